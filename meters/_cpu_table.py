"""The CPU power table (``meters/cpu_power.csv``) and the rule that picks a row for a CPU name.

Each row gives a CPU model's TDP (watts), its vendor, its cores and hardware
threads where known, and the source of the figures. The table is generated
(``python -m meters.regen_cpu_table``) from CodeCarbon's community table of
CPU TDPs (MIT, see ``meters/CPU_TABLE_NOTICE``) with rayjoule's own sourced
rows (``meters/cpu_power_rayjoule.csv``: vendor spec pages, cores and threads,
cloud providers' custom parts) taking precedence.

The match rule (:func:`explain_match`): a row matches a name when their keys
(vendor + family + model number, :func:`meters._cpu_names.cpu_key`) are equal
— never a substring, a nearest name or a guess across vendors. When several
rows share the key and disagree on the TDP, the name is ambiguous and nothing
matches; the reason says which rows disagreed.
"""

from __future__ import annotations

import csv
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from meters._cpu_names import cpu_key, normalise_cpu_name

DEFAULT_TABLE = Path(__file__).with_name("cpu_power.csv")
COLUMNS = ("model", "vendor", "tdp_w", "cores", "threads", "source")
MATCH_RULE = ("the name's key (vendor + family + model number, after normalising) equals the "
              "row's key")

__all__ = ["COLUMNS", "CpuMatch", "CpuPowerRow", "DEFAULT_TABLE", "MATCH_RULE",
           "explain_match", "load_cpu_table", "match_cpu", "normalise_cpu_name"]


@dataclass(frozen=True)
class CpuPowerRow:
    """One row of the CPU power table (``cores`` / ``threads`` None: the source gives none)."""

    model: str
    vendor: str
    tdp_w: float
    cores: int | None
    threads: int | None
    source: str

    @property
    def key(self) -> str | None:
        return cpu_key(self.model)[0]

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(normalise_cpu_name(self.model).split())


@dataclass(frozen=True)
class CpuMatch:
    """What the table says about one CPU name: the row, the key and rule, or why none."""

    name: str
    key: str | None
    row: CpuPowerRow | None
    rule: str | None
    reason: str | None


def _optional_int(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw else None


@functools.lru_cache(maxsize=8)
def _load(path: str) -> tuple[CpuPowerRow, ...]:
    rows: list[CpuPowerRow] = []
    with open(path, newline="", encoding="utf-8") as f:
        for lineno, rec in enumerate(csv.DictReader(f), start=2):
            try:
                row = CpuPowerRow(
                    model=rec["model"].strip(),
                    vendor=rec["vendor"].strip(),
                    tdp_w=float(rec["tdp_w"]),
                    cores=_optional_int(rec["cores"]),
                    threads=_optional_int(rec["threads"]),
                    source=rec["source"].strip(),
                )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ValueError(f"{path}:{lineno}: malformed CPU power row {rec!r}: {exc}") \
                    from exc
            if not row.tdp_w > 0 or any(n is not None and n <= 0
                                        for n in (row.cores, row.threads)):
                raise ValueError(f"{path}:{lineno}: TDP, cores and threads must be > 0")
            rows.append(row)
    return tuple(rows)


@functools.lru_cache(maxsize=8)
def _index(rows: tuple[CpuPowerRow, ...]) -> dict[str, tuple[CpuPowerRow, ...]]:
    by_key: dict[str, list[CpuPowerRow]] = {}
    for row in rows:
        if row.key is not None:
            by_key.setdefault(row.key, []).append(row)
    return {k: tuple(v) for k, v in by_key.items()}


def load_cpu_table(path: str | os.PathLike[str] | None = None) -> list[CpuPowerRow]:
    """The rows of the table at ``path`` (default: the table shipped with the package)."""
    return list(_load(str(path or DEFAULT_TABLE)))


def explain_match(cpu_name: str, table: list[CpuPowerRow] | None = None) -> CpuMatch:
    """The row whose key equals ``cpu_name``'s, with the rule; or None and the reason.

    >>> m = explain_match("Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz")
    >>> m.key, m.row.tdp_w
    ('intel xeon e5-2686 v4', 145.0)
    >>> explain_match("Intel(R) Xeon(R) CPU E5-2686 v9 @ 2.30GHz").reason
    "no row of the CPU power table has the key 'intel xeon e5-2686 v9'"
    """
    rows = tuple(load_cpu_table() if table is None else table)
    key, why = cpu_key(cpu_name)
    if key is None:
        return CpuMatch(cpu_name, None, None, None, why)
    found = _index(rows).get(key, ())
    if not found:
        return CpuMatch(cpu_name, key, None, None,
                        f"no row of the CPU power table has the key {key!r}")
    if len({r.tdp_w for r in found}) > 1:
        listed = "; ".join(f"{r.model!r} {r.tdp_w:g} W ({r.source})" for r in found)
        return CpuMatch(cpu_name, key, None, None,
                        f"ambiguous: rows with the key {key!r} disagree on the TDP: {listed}")
    row = min(found, key=lambda r: (r.threads is None, r.cores is None))
    return CpuMatch(cpu_name, key, row, f"{MATCH_RULE}: {key!r}", None)


def match_cpu(cpu_name: str, table: list[CpuPowerRow] | None = None) -> CpuPowerRow | None:
    """The table row for ``cpu_name`` by :func:`explain_match`'s rule, or None.

    >>> match_cpu("AMD EPYC 7R32").model
    'EPYC 7R32'
    >>> match_cpu("AMD EPYC") is None
    True
    """
    return explain_match(cpu_name, table).row
