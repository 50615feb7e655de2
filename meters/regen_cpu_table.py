"""``python -m meters.regen_cpu_table``: rebuild ``meters/cpu_power.csv`` from CodeCarbon's table.

Why generated: CodeCarbon (MIT) keeps a community table of ~4,900 CPU TDPs
(``codecarbon/data/hardware/cpu_power.csv``, columns ``Name,TDP``); rayjoule
keeps its own sourced rows (``meters/cpu_power_rayjoule.csv``: the vendor's
spec page, cores and threads, and cloud providers' custom parts). The shipped
table is the two merged by a fixed rule, so anyone can rebuild it from a newer
CodeCarbon and see what changed; rayjoule never imports CodeCarbon at run time.

The rule:

* every row gets a key (:func:`meters._cpu_names.cpu_key`); CodeCarbon rows
  with no key (no vendor or family word: "4334", "B57"; no model number) or
  a TDP that is not a number ("29.32.9") are left out and counted;
* a rayjoule row with a TDP replaces every CodeCarbon row of its key (its
  source notes CodeCarbon's figure where that differs); a rayjoule row
  without a TDP adds cores and threads to the CodeCarbon row(s) of its key;
* CodeCarbon rows repeating a (key, TDP) already kept are dropped; rows of
  one key with different TDPs are all kept, and the matcher calls that key
  ambiguous;
* rayjoule's rows come first in their file's order, then CodeCarbon's in its.

Usage::

    python -m meters.regen_cpu_table                      # the installed codecarbon's table
    python -m meters.regen_cpu_table --from cpu_power.csv --codecarbon-version 3.3.2
    python -m meters.regen_cpu_table --check              # exit 1 if the shipped table differs
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import importlib.util
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from meters._cpu_names import cpu_key
from meters._cpu_table import COLUMNS, DEFAULT_TABLE

RAYJOULE_ROWS = Path(__file__).with_name("cpu_power_rayjoule.csv")
CODECARBON_DATA = ("data", "hardware", "cpu_power.csv")


@dataclass
class BuildReport:
    """What the merge did, for the script's summary line."""

    codecarbon_rows: int = 0
    kept: int = 0
    no_key: list[str] = field(default_factory=list)
    bad_tdp: list[str] = field(default_factory=list)
    duplicates: int = 0
    overridden: int = 0
    topology_added: int = 0
    rayjoule_rows: int = 0

    def summary(self) -> str:
        return (f"{self.rayjoule_rows} rayjoule rows + {self.kept} of {self.codecarbon_rows} "
                f"CodeCarbon rows ({self.overridden} replaced by rayjoule rows, "
                f"{self.topology_added} given cores/threads, {self.duplicates} repeats dropped, "
                f"{len(self.no_key)} without vendor or model number left out, "
                f"{len(self.bad_tdp)} with a TDP that is not a number left out)")


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _tdp(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value > 0 else None


def build_rows(codecarbon_csv: Path, version: str, rayjoule_csv: Path = RAYJOULE_ROWS
               ) -> tuple[list[dict[str, str]], BuildReport]:
    """The merged table's rows (``COLUMNS`` as strings) and what the merge did."""
    report = BuildReport()
    origin = f"CodeCarbon {version} data/hardware/cpu_power.csv (MIT)"
    own: dict[str, dict[str, str]] = {}
    topology: dict[str, dict[str, str]] = {}
    out: list[dict[str, str]] = []
    for rec in _read(rayjoule_csv):
        key, why = cpu_key(rec["model"])
        if key is None:
            raise ValueError(f"{rayjoule_csv}: rayjoule row {rec['model']!r}: {why}")
        if rec["tdp_w"].strip():
            own[key] = rec
        else:
            topology[key] = rec
    cc = _read(codecarbon_csv)
    report.codecarbon_rows = len(cc)
    cc_tdps: dict[str, list[float]] = {}
    for rec in cc:
        key = cpu_key(rec["Name"])[0]
        tdp = _tdp(rec["TDP"].strip())
        if key is not None and tdp is not None:
            cc_tdps.setdefault(key, []).append(tdp)
    for key, rec in own.items():
        others = sorted({t for t in cc_tdps.get(key, []) if t != float(rec["tdp_w"])})
        note = (f"; {origin} lists {', '.join(f'{t:g}' for t in others)} W" if others else "")
        out.append({"model": rec["model"].strip(), "vendor": key.split()[0],
                    "tdp_w": f"{float(rec['tdp_w']):g}", "cores": rec["cores"].strip(),
                    "threads": rec["threads"].strip(), "source": rec["source"].strip() + note})
        report.rayjoule_rows += 1
    seen: set[tuple[str, float]] = set()
    for rec in cc:
        name = rec["Name"].strip()
        key, _ = cpu_key(name)
        tdp = _tdp(rec["TDP"].strip())
        if key is None:
            report.no_key.append(name)
            continue
        if tdp is None:
            report.bad_tdp.append(name)
            continue
        if key in own:
            report.overridden += 1
            continue
        if (key, tdp) in seen:
            report.duplicates += 1
            continue
        seen.add((key, tdp))
        row = {"model": name, "vendor": key.split()[0], "tdp_w": f"{tdp:g}", "cores": "",
               "threads": "", "source": f"{origin}: {name!r}"}
        if key in topology:
            top = topology[key]
            row.update(cores=top["cores"].strip(), threads=top["threads"].strip(),
                       source=f"TDP: {origin}: {name!r}; cores/threads: "
                              f"{top['source'].strip()}")
            report.topology_added += 1
        out.append(row)
        report.kept += 1
    orphans = sorted(set(topology) - set(cc_tdps))
    if orphans:
        raise ValueError(f"{rayjoule_csv}: rows without a TDP need a CodeCarbon row of the "
                         f"same key to give one; none for {', '.join(orphans)}")
    return out, report


def render_csv(rows: Sequence[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def installed_codecarbon() -> tuple[Path, str]:
    """The installed codecarbon's table and version (the package is located, never imported)."""
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("codecarbon is not installed: pip install codecarbon (or "
                                "`pip download codecarbon --no-deps` and unzip the wheel), or "
                                "give --from FILE --codecarbon-version X")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*CODECARBON_DATA)
    return path, importlib.metadata.version("codecarbon")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m meters.regen_cpu_table",
                                description="Rebuild meters/cpu_power.csv from CodeCarbon's "
                                            "CPU table and rayjoule's own rows.")
    p.add_argument("--from", dest="source", metavar="FILE",
                   help="CodeCarbon's cpu_power.csv (default: the installed codecarbon's)")
    p.add_argument("--codecarbon-version", metavar="X.Y.Z",
                   help="the CodeCarbon version FILE comes from (required with --from)")
    p.add_argument("--rayjoule-rows", metavar="FILE", default=str(RAYJOULE_ROWS),
                   help="rayjoule's own rows (default: meters/cpu_power_rayjoule.csv)")
    p.add_argument("--out", metavar="PATH", default=str(DEFAULT_TABLE),
                   help="where to write the table (default: meters/cpu_power.csv)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if --out differs from the rebuilt table")
    args = p.parse_args(argv)
    try:
        if args.source:
            if not args.codecarbon_version:
                raise ValueError("--from FILE needs --codecarbon-version (the version FILE "
                                 "comes from, recorded in every row's source)")
            source, version = Path(args.source), args.codecarbon_version
            if not source.is_file():
                raise ValueError(f"--from {source}: no such file")
        else:
            source, version = installed_codecarbon()
        rows, report = build_rows(source, version, Path(args.rayjoule_rows))
    except (ValueError, FileNotFoundError, KeyError, OSError) as exc:
        print(f"regen_cpu_table: {exc}", file=sys.stderr)
        return 2
    text = render_csv(rows)
    out = Path(args.out)
    if args.check:
        same = out.is_file() and out.read_text(encoding="utf-8") == text
        print(f"{out}: {'up to date' if same else 'differs from the rebuilt table'}; "
              f"{report.summary()}")
        return 0 if same else 1
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}: {len(rows)} rows from {source}: {report.summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
