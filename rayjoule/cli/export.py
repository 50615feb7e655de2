"""``python -m rayjoule.export --db PATH --out DIR``: the results store as Parquet.

One Parquet file per table (runs, tasks, samples), written with pyarrow so
pandas, DuckDB or Spark read them directly.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rayjoule.core.config import DEFAULT_DB
from rayjoule.runs.store import Store, open_existing


def export_parquet(store: Store, out_dir: str | Path) -> list[Path]:
    """Write runs/tasks/samples tables as Parquet files in ``out_dir``; return their paths."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("runs", "tasks", "samples"):
        columns, rows = store.table(name)
        table = pa.Table.from_pylist([dict(zip(columns, r, strict=True)) for r in rows]) if rows \
            else pa.table({c: pa.array([], type=pa.null()) for c in columns})
        path = out / f"{name}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        pq.write_table(table, tmp)
        tmp.replace(path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rayjoule.export", description=__doc__)
    parser.add_argument("--db", default=DEFAULT_DB, help="results store (default %(default)s)")
    parser.add_argument("--out", required=True, help="folder for the Parquet files")
    args = parser.parse_args(argv)
    with open_existing(args.db) as store:
        for path in export_parquet(store, args.out):
            print(path)
    return 0

