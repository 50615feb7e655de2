"""The results store: every run, its tasks and its meter samples, in SQLite.

WAL mode and one transaction per state change mean a crash or Ctrl-C loses
at most the run in flight, and even that one stays visible as ``running`` or
``failed`` with its error. Failed runs are stored too: knowing what broke is
part of the record.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rayjoule.core.errors import ConfigError, StoreBusy, StoreFailed
from rayjoule.core.result import RunResult, TaskRecord
from rayjoule.runs.store_records import ImportedRun, RunRecord
from rayjoule.runs.store_schema import (
    APPLICATION_ID,
    MIGRATE_V1,
    SCHEMA,
    SCHEMA_VERSION,
    TASK_COLUMNS,
)

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "TASK_COLUMNS", "ImportedRun", "RunRecord",
           "Store", "open_existing"]

#: how long a store waits for another process's write lock before giving up (seconds)
BUSY_WAIT_S = 30.0


class Store:
    """A SQLite results store.

    ``busy_wait_s``: how long an open or a write waits for another process's write lock
    before it gives up with :class:`StoreBusy`.

    >>> with Store(":memory:") as store:
    ...     store.begin("r1", workload="pi", framework="native", config={})
    ...     store.get_row("r1")["status"]
    'running'
    """

    def __init__(self, path: str | Path, *, busy_wait_s: float = BUSY_WAIT_S) -> None:
        self.path = str(path)
        #: True for a store opened with :meth:`open_read_only` (every write is refused)
        self.read_only = False
        #: the schema its tables have: :data:`SCHEMA_VERSION`, but for an older store opened
        #: with :meth:`open_read_only`, which upgrades nothing
        self.schema_version = SCHEMA_VERSION
        if self.path != ":memory:":
            parent = Path(self.path).expanduser().resolve().parent
            if not parent.is_dir():
                raise ConfigError(f"results store folder does not exist: {parent}")
            if Path(self.path).is_dir():
                raise ConfigError(f"results store path is a folder, not a file: {self.path}")
            if not Path(self.path).exists() and not os.access(parent, os.W_OK | os.X_OK):
                raise ConfigError(f"results store folder is not writable: {parent}")
        # one connection, usable from any thread one call at a time (the lock): a
        # measure() block's attribution writes from a thread of its own
        self._lock = threading.RLock()
        self._db = _connect(self.path, self.path, busy_wait_s=busy_wait_s)
        try:
            version = self._recognise()  # before any write: a foreign file stays untouched
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            if version is None:
                self._db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            elif version < SCHEMA_VERSION:
                self._migrate(version)
            self._db.executescript(SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise _refusal(self.path, exc) from None
        except ConfigError:
            self._db.close()
            raise

    @classmethod
    def open_read_only(cls, path: str | Path) -> Store:
        """Open an existing store for reading only: no file is created or changed.

        Without a ``-wal`` file beside it the store is wholly in its main file, and it is
        opened ``immutable`` so SQLite creates no ``-wal``/``-shm`` files next to it either;
        with one (a writer is running, or crashed) it is opened ``mode=ro`` so the WAL's
        committed runs are read too. Anything but a rayjoule store is refused with a
        ConfigError, as :class:`Store` refuses it.
        """
        p = Path(path).expanduser()
        if not p.exists():
            raise ConfigError(f"results store not found: {path}")
        if not p.is_file():
            raise ConfigError(f"results store path is not a file: {path}")
        wal = p.with_name(p.name + "-wal")
        uri = f"file:{quote(str(p.resolve()))}?mode=ro" + ("" if wal.exists() else "&immutable=1")
        store = cls.__new__(cls)
        store.path, store.read_only, store._lock = str(path), True, threading.RLock()
        store._db = _connect(uri, str(path), uri=True)
        try:
            version = store._recognise()
            if version is None:
                raise ConfigError(f"{path} is not a rayjoule results store (no tables); "
                                  "give another --db")
            store.schema_version = version
        except sqlite3.DatabaseError as exc:
            store._db.close()
            raise _refusal(str(path), exc) from None
        except ConfigError:
            store._db.close()
            raise
        return store

    def _recognise(self) -> int | None:
        """The schema version of an existing store, None for an empty file; refuse others.

        Only reads: an SQLite file of another application (an Optuna study, anything)
        is refused before a single byte of it changes.
        """
        tables = {r[0] for r in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return None
        if "meta" not in tables or "runs" not in tables:
            raise ConfigError(f"{self.path} is an SQLite file of another application, not a "
                              f"rayjoule results store (tables: {', '.join(sorted(tables)[:5])})"
                              "; give another --db")
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row and str(row[0]).isdigit() else 0
        if not 1 <= version <= SCHEMA_VERSION:
            raise ConfigError(f"{self.path} has rayjoule store schema version {row and row[0]}, "
                              f"this rayjoule reads 1 to {SCHEMA_VERSION}; upgrade rayjoule")
        return version

    def _migrate(self, version: int) -> None:
        """Bring a version-1 store (rayjoule 0.1) to this schema, keeping every row."""
        self._db.executescript(MIGRATE_V1)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. SQLite's own errors while writing (locked past the wait,
        a full disk) become :class:`StoreBusy`/:class:`StoreFailed`: the work failed, not the
        input, and the transaction's writes are rolled back whole."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                raise _write_failure(self.path, exc) from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError):
                    raise _write_failure(self.path, exc) from None
                raise

    def _read(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                raise ConfigError(f"{self.path}: cannot read the store: {exc}") from None

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
                " overhead_j=?, complete=?, meter=?, kind=?, result_json=? WHERE run_id=?",
                (result.status, result.error, result.wall_s, result.energy.total_j,
                 result.energy.static_j, result.energy.dynamic_j, result.energy.overhead_j,
                 int(result.complete), result.meter.name, result.meter.kind,
                 json.dumps(_without_tasks(result), default=str), result.run_id),
            )
            db.execute("DELETE FROM tasks WHERE run_id=?", (result.run_id,))
            db.executemany(
                f"INSERT INTO tasks (run_id, {_TASK_SQL}, extra_json)"
                f" VALUES (?{', ?' * len(TASK_COLUMNS)}, ?)",
                [(result.run_id, *(getattr(t, c) for c in TASK_COLUMNS), _extra(t))
                 for t in result.tasks],
            )

    def fail(self, run_id: str, error: str, status: str = "failed") -> None:
        """Mark a run failed (or interrupted) when no result could be assembled."""
        if status not in ("failed", "interrupted"):
            raise ValueError(f"fail() takes status failed or interrupted, not {status!r}")
        with self._tx() as db:
            db.execute("UPDATE runs SET status=?, error=? WHERE run_id=?",
                       (status, error, run_id))

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
        rows = self._read("SELECT * FROM runs WHERE run_id=?", (run_id,))
        return dict(rows[0]) if rows else None

    def get(self, run_id: str) -> RunResult | None:
        """The stored RunResult of a finished run (None when absent or never finished)."""
        row = self.get_row(run_id)
        if not row or not row["result_json"]:
            return None
        data = json.loads(row["result_json"])
        data["tasks"] = [t.to_dict() for t in self.tasks(run_id)]
        return RunResult.from_dict(data)

    def runs(self, **where: Any) -> list[dict[str, Any]]:
        """Run rows matching equality filters, oldest first, e.g. ``runs(status='failed')``."""
        cols = {"workload", "framework", "status", "study", "trial", "parent_id"}
        bad = set(where) - cols
        if bad:
            raise ConfigError(f"cannot filter runs by {', '.join(sorted(bad))}")
        clause = " AND ".join(f"{k}=?" for k in where) or "1=1"
        rows = self._read(f"SELECT * FROM runs WHERE {clause} ORDER BY created",
                          tuple(where.values()))
        return [dict(r) for r in rows]

    def records(self, **where: Any) -> list[RunRecord]:
        """Typed run rows matching equality filters (as :meth:`runs`), oldest first.

        The one place a run's ``config_json`` / ``result_json`` is parsed: readers of the
        store (modelling, reports, export) take these records, never the JSON text.
        """
        return [RunRecord.of_row(row, self.path) for row in self.runs(**where)]

    def record(self, run_id: str) -> RunRecord | None:
        """The typed row of one run (None when absent)."""
        row = self.get_row(run_id)
        return RunRecord.of_row(row, self.path) if row else None

    def add_imported(self, runs: Sequence[ImportedRun]) -> list[str]:
        """Store runs measured elsewhere (imported time-only profiles), all or none.

        They are finished runs no meter saw: energy columns stay null, which is what tells
        readers they are time-only.
        """
        now = time.time()
        with self._tx() as db:
            db.executemany(
                "INSERT INTO runs (run_id, created, workload, framework, status, wall_s,"
                " config_json, result_json) VALUES (?, ?, ?, ?, 'ok', ?, ?, ?)",
                [(r.run_id, now, r.workload, r.framework, r.wall_s,
                  json.dumps(r.config, default=str), json.dumps(r.result, default=str))
                 for r in runs])
        return [r.run_id for r in runs]

    def tasks(self, run_id: str) -> list[TaskRecord]:
        rows = self._read("SELECT * FROM tasks WHERE run_id=? ORDER BY rowid", (run_id,))
        return [TaskRecord(**{c: r[c] for c in TASK_COLUMNS},
                           **(json.loads(r["extra_json"]) if r["extra_json"] else {}))
                for r in rows]

    def table(self, name: str) -> tuple[list[str], list[tuple]]:
        """Column names and rows of one table, for export."""
        if name not in ("runs", "tasks", "samples"):
            raise ConfigError(f"unknown table {name!r}")
        with self._lock:
            cur = self._db.execute(f"SELECT * FROM {name}")
            return [c[0] for c in cur.description], [tuple(r) for r in cur.fetchall()]


def _connect(target: str, path: str, uri: bool = False,
             busy_wait_s: float = BUSY_WAIT_S) -> sqlite3.Connection:
    """An SQLite connection, or a ConfigError that says why there is none (a folder that
    cannot be written, a file without permission)."""
    try:
        db = sqlite3.connect(target, timeout=busy_wait_s, isolation_level=None,
                             check_same_thread=False, uri=uri)
    except sqlite3.Error as exc:
        raise ConfigError(f"{path} cannot be opened as a results store: {exc}") from None
    db.row_factory = sqlite3.Row
    return db


def _refusal(path: str, exc: sqlite3.DatabaseError) -> ConfigError | StoreBusy:
    """Why a store could not be opened: busy (another process held its write lock past the
    wait — SQLite's "database is locked") is not bad input; anything else is."""
    if _locked(exc):
        return _busy(path)
    return ConfigError(f"{path} is not a usable rayjoule results store: {exc}")


def _write_failure(path: str, exc: sqlite3.DatabaseError) -> StoreFailed:
    """Why a write to an open store failed: busy, or SQLite's own reason (a full disk)."""
    if _locked(exc):
        return _busy(path)
    return StoreFailed(f"{path}: writing to the results store failed: {exc}; the runs "
                       "stored before this one are kept")


def _locked(exc: sqlite3.DatabaseError) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc).lower()


def _busy(path: str) -> StoreBusy:
    return StoreBusy(f"{path} is busy: another process kept it locked for its writes past "
                     "the store's wait; run again when that process is done")


_TASK_SQL = ", ".join(f'"{c}"' for c in TASK_COLUMNS)


def _extra(task: TaskRecord) -> str | None:
    """A task's framework stats and self-metered energy, as JSON (None when it has none)."""
    extra = {k: v for k, v in (("framework_stats", task.framework_stats),
                               ("call_energy", task.call_energy)) if v}
    return json.dumps(extra, default=str) if extra else None


def _without_tasks(result: RunResult) -> dict[str, Any]:
    """The result's JSON without its task list (the tasks table holds them, once).

    Repeats keep theirs, so a combined result still shows every repeat's tasks.
    """
    return result.to_dict(tasks=False)


def open_existing(path: str | Path) -> Store:
    """Open a store that must already exist (for export/report), never creating one."""
    if str(path) != ":memory:" and not Path(path).is_file():
        raise ConfigError(f"results store not found: {path}")
    return Store(path)
