"""The results store: every run, its tasks and its meter samples, in SQLite.

WAL mode and one transaction per state change mean a crash or Ctrl-C loses
at most the run in flight, and even that one stays visible as ``running`` or
``failed`` with its error. Failed runs are stored too: knowing what broke is
part of the record.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rayjoule.core.errors import ConfigError
from rayjoule.core.result import RunResult, TaskRecord

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    parent_id TEXT,
    created REAL NOT NULL,
    workload TEXT NOT NULL,
    framework TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    wall_s REAL,
    total_j REAL,
    static_j REAL,
    dynamic_j REAL,
    meter TEXT,
    kind TEXT,
    study TEXT,
    trial INTEGER,
    config_json TEXT NOT NULL,
    result_json TEXT
);
CREATE INDEX IF NOT EXISTS runs_parent ON runs(parent_id);
CREATE INDEX IF NOT EXISTS runs_study ON runs(study, trial);
CREATE TABLE IF NOT EXISTS tasks (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    task_id INTEGER NOT NULL,
    node_id TEXT, host TEXT, pid INTEGER,
    start REAL, "end" REAL, cpu_s REAL, energy_j REAL,
    PRIMARY KEY (run_id, task_id)
);
CREATE TABLE IF NOT EXISTS samples (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    host TEXT NOT NULL, meter TEXT NOT NULL, kind TEXT NOT NULL,
    t REAL NOT NULL, domain TEXT NOT NULL, joules REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_run ON samples(run_id);
"""

TASK_COLUMNS = ("task_id", "node_id", "host", "pid", "start", "end", "cpu_s", "energy_j")


class Store:
    """A SQLite results store.

    >>> with Store(":memory:") as store:
    ...     store.begin("r1", workload="pi", framework="native", config={})
    ...     store.get_row("r1")["status"]
    'running'
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            parent = Path(self.path).expanduser().resolve().parent
            if not parent.is_dir():
                raise ConfigError(f"results store folder does not exist: {parent}")
            if Path(self.path).is_dir():
                raise ConfigError(f"results store path is a folder, not a file: {self.path}")
        try:
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"{self.path} is not a usable rayjoule results store: {exc}"
            ) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- writing -----------------------------------------------------------------
    def begin(
        self,
        run_id: str,
        *,
        workload: str,
        framework: str,
        config: dict[str, Any],
        parent_id: str | None = None,
        study: str | None = None,
        trial: int | None = None,
    ) -> None:
        """Record that a run started, before any work, so a crash leaves a trace."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (run_id, parent_id, created, workload, framework, status,"
                " study, trial, config_json) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?)",
                (run_id, parent_id, time.time(), workload, framework, study, trial,
                 json.dumps(config, default=str)),
            )

    def finish(self, result: RunResult) -> None:
        """Store a run's outcome (ok or failed) with its tasks, replacing the 'running' row."""
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status=?, error=?, wall_s=?, total_j=?, static_j=?, dynamic_j=?,"
                " meter=?, kind=?, result_json=? WHERE run_id=?",
                (result.status, result.error, result.wall_s, result.energy.total_j,
                 result.energy.static_j, result.energy.dynamic_j, result.meter.name,
                 result.meter.kind, json.dumps(result.to_dict(), default=str), result.run_id),
            )
            db.execute("DELETE FROM tasks WHERE run_id=?", (result.run_id,))
            db.executemany(
                'INSERT INTO tasks (run_id, task_id, node_id, host, pid, start, "end", cpu_s,'
                " energy_j) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(result.run_id, *(getattr(t, c) for c in TASK_COLUMNS)) for t in result.tasks],
            )

    def fail(self, run_id: str, error: str) -> None:
        """Mark a run failed when no partial result could be assembled."""
        with self._tx() as db:
            db.execute("UPDATE runs SET status='failed', error=? WHERE run_id=?", (error, run_id))

    def add_samples(
        self, run_id: str, rows: Iterable[tuple[str, str, str, float, str, float]]
    ) -> None:
        """Append meter samples: (host, meter, kind, t, domain, joules)."""
        with self._tx() as db:
            db.executemany(
                "INSERT INTO samples (run_id, host, meter, kind, t, domain, joules)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run_id, *row) for row in rows],
            )

    # -- reading -----------------------------------------------------------------
    def get_row(self, run_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return dict(row) if row else None

    def get(self, run_id: str) -> RunResult | None:
        """The stored RunResult of a finished run (None when absent or never finished)."""
        row = self.get_row(run_id)
        if not row or not row["result_json"]:
            return None
        return RunResult.from_dict(json.loads(row["result_json"]))

    def runs(self, **where: Any) -> list[dict[str, Any]]:
        """Run rows matching equality filters, oldest first, e.g. ``runs(status='failed')``."""
        cols = {"workload", "framework", "status", "study", "trial", "parent_id"}
        bad = set(where) - cols
        if bad:
            raise ConfigError(f"cannot filter runs by {', '.join(sorted(bad))}")
        clause = " AND ".join(f"{k}=?" for k in where) or "1=1"
        rows = self._db.execute(
            f"SELECT * FROM runs WHERE {clause} ORDER BY created", tuple(where.values())
        ).fetchall()
        return [dict(r) for r in rows]

    def tasks(self, run_id: str) -> list[TaskRecord]:
        rows = self._db.execute(
            "SELECT * FROM tasks WHERE run_id=? ORDER BY task_id", (run_id,)
        ).fetchall()
        return [TaskRecord(**{c: r[c] for c in TASK_COLUMNS}) for r in rows]

    def table(self, name: str) -> tuple[list[str], list[tuple]]:
        """Column names and rows of one table, for export."""
        if name not in ("runs", "tasks", "samples"):
            raise ConfigError(f"unknown table {name!r}")
        cur = self._db.execute(f"SELECT * FROM {name}")
        return [c[0] for c in cur.description], [tuple(r) for r in cur.fetchall()]


def open_existing(path: str | Path) -> Store:
    """Open a store that must already exist (for export/report), never creating one."""
    if str(path) != ":memory:" and not Path(path).is_file():
        raise ConfigError(f"results store not found: {path}")
    return Store(path)
