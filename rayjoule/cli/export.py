"""``python -m rayjoule.export --db PATH --out DIR``: the results store as Parquet.

One Parquet file per table (runs, tasks, samples) with a fixed schema, so pandas,
DuckDB or Spark read them directly and the exports of several stores read as one
``pyarrow.dataset``; what the columns mean is in
:mod:`rayjoule.runs.reports.parquet_export`. This module holds the arguments and the
rendering only.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from rayjoule.cli.common import Parser, add_store_args
from rayjoule.cli.output import (
    check_not_store,
    check_output_paths,
    human_output_to_stderr,
    write_json,
)
from rayjoule.core.errors import ConfigError
from rayjoule.runs.reports.parquet_export import TABLES, ExportedTable, export_parquet
from rayjoule.runs.store import SCHEMA_VERSION, Store

__all__ = ["export_parquet", "main"]

DESCRIPTION = ("The results store as Parquet: runs, tasks and meter samples, one file each, "
               "with fixed column types, so exports of several stores read as one dataset "
               "(pyarrow.dataset, DuckDB, Spark). Columns: see "
               "rayjoule/runs/reports/parquet_export.py and docs/metrics.md.")


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m rayjoule.export", description=DESCRIPTION)
    add_store_args(parser, writes=False)
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for runs.parquet, tasks.parquet and samples.parquet")
    args = parser.parse_args(argv)
    # both output paths are checked before the store is even opened: bad input changes
    # nothing. The store is opened read only: no migration of an older store, no -wal/-shm
    # beside it, and a writer busy with it does not block the export
    check_output_paths(args.db, files={"--json": args.json}, folders={"--out": args.out})
    check_out_spares_store(args.out, args.db)
    with store_for_export(args.db) as store:
        written = export_parquet(store, args.out)
    render(written, sys.stderr if human_output_to_stderr(args.json) else sys.stdout)
    if args.json is not None:
        write_json(args.json, {"db": str(args.db), "out": str(args.out),
                               "files": [w.to_dict() for w in written]})
    return 0


def check_out_spares_store(out: str, db: str) -> None:
    """None of the files export writes in ``--out`` (``<table>.parquet`` and the temporary
    ``<table>.parquet.tmp`` beside it) may be the store: a store named ``tasks.parquet``
    in its own ``--out`` folder was replaced by the export of itself."""
    for table in TABLES:
        for name in (f"{table}.parquet", f"{table}.parquet.tmp"):
            try:
                check_not_store(Path(out) / name, "--out", db)
            except ConfigError:
                raise ConfigError(f"--out {out} would write {name} over the results store "
                                  f"(--db {db}); give another folder") from None


@contextlib.contextmanager
def store_for_export(db: str) -> Iterator[Store]:
    """The store, opened read only; a store of an older schema (rayjoule 0.1) is exported
    from an upgraded copy in a temporary folder, never upgraded in place (opening it for
    writing, as export did, upgraded the user's file; read only, its missing columns
    stopped the export with a traceback)."""
    with Store.open_read_only(db) as store:
        if store.schema_version == SCHEMA_VERSION:
            yield store
            return
    with tempfile.TemporaryDirectory(prefix="rayjoule-export-") as tmp:
        copy = Path(tmp) / "store.sqlite"
        shutil.copyfile(db, copy)
        if Path(f"{db}-wal").is_file():  # committed runs a writer has not checkpointed
            shutil.copyfile(f"{db}-wal", f"{copy}-wal")
        with Store(copy) as upgraded:
            yield upgraded


def render(written: list[ExportedTable], out: TextIO) -> None:
    """One line per file: table, rows, path."""
    for w in written:
        print(f"{w.table:<8} {w.rows:>8} rows  {w.path}", file=out)
