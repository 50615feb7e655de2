"""The CPU power table (``meters/cpu_power.csv``) and CPU-name matching for the tdp model.

Each row gives a CPU model's TDP (watts), cores, hardware threads and the
source of the figure (the vendor's spec page; for cloud providers' custom
parts, whose TDP is not published, the public part assumed in its place).
A host's CPU name from ``/proc/cpuinfo`` is normalised the same way as the
table's model names, and a row matches when all its tokens appear
consecutively in the host's name; the longest matching row wins, so
"Ryzen 9 7950X3D" is not mistaken for "Ryzen 9 7950X".
"""

from __future__ import annotations

import csv
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TABLE = Path(__file__).with_name("cpu_power.csv")

_NOISE = [
    re.compile(r"\((?:r|tm|c)\)"),  # (R) (TM) (C), after lowercasing
    re.compile(r"[®™]"),
    re.compile(r"@\s*[\d.]+\s*[gm]hz"),  # "@ 2.50GHz"
    re.compile(r"\b\d+-core processor\b"),  # "64-Core Processor"
    re.compile(r"\b(?:cpu|processor)\b"),
]


def normalise_cpu_name(name: str) -> str:
    """Lowercase, without trademarks, clock, "CPU"/"n-Core Processor" and extra spaces.

    >>> normalise_cpu_name("Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz")
    'intel xeon platinum 8259cl'
    >>> normalise_cpu_name("AMD EPYC 7763 64-Core Processor")
    'amd epyc 7763'
    """
    text = name.lower()
    for pattern in _NOISE:
        text = pattern.sub(" ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class CpuPowerRow:
    """One row of the CPU power table."""

    model: str
    tdp_w: float
    cores: int
    threads: int
    source: str

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(normalise_cpu_name(self.model).split())

    @property
    def watts_per_thread(self) -> float:
        return self.tdp_w / self.threads


@functools.lru_cache(maxsize=8)
def _load(path: str) -> tuple[CpuPowerRow, ...]:
    rows: list[CpuPowerRow] = []
    with open(path, newline="", encoding="utf-8") as f:
        for lineno, rec in enumerate(csv.DictReader(f), start=2):
            try:
                row = CpuPowerRow(
                    model=rec["model"].strip(),
                    tdp_w=float(rec["tdp_w"]),
                    cores=int(rec["cores"]),
                    threads=int(rec["threads"]),
                    source=rec["source"].strip(),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{lineno}: malformed CPU power row {rec!r}: {exc}") \
                    from exc
            if row.tdp_w <= 0 or row.threads <= 0 or row.cores <= 0:
                raise ValueError(f"{path}:{lineno}: TDP, cores and threads must be > 0")
            rows.append(row)
    return tuple(rows)


def load_cpu_table(path: str | os.PathLike[str] | None = None) -> list[CpuPowerRow]:
    """The rows of the table at ``path`` (default: the table shipped with the package)."""
    return list(_load(str(path or DEFAULT_TABLE)))


def match_cpu(cpu_name: str, table: list[CpuPowerRow] | None = None) -> CpuPowerRow | None:
    """The table row whose model is a token substring of ``cpu_name``, longest first.

    >>> match_cpu("AMD EPYC 7R32").model
    'EPYC 7R32'
    >>> match_cpu("AMD EPYC") is None
    True
    """
    tokens = normalise_cpu_name(cpu_name).split()
    best: CpuPowerRow | None = None
    for row in load_cpu_table() if table is None else table:
        want = row.tokens
        n = len(want)
        if n == 0 or (best is not None and n <= len(best.tokens)):
            continue
        if any(tuple(tokens[i : i + n]) == want for i in range(len(tokens) - n + 1)):
            best = row
    return best
