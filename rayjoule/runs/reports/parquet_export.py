"""The results store as Parquet: one file per table, each with a schema fixed in code.

Why declared schemas: pyarrow infers a column's type from its values, so an empty
store, a column that is all null or a setting that is sometimes a number and sometimes
a per-stage mapping would give each export different types, and exports from different
stores (machines, commands) would no longer read as one dataset. Here every column's
type is declared below and never depends on the data; the files of several exports
concatenate with ``pyarrow.dataset``::

    import pyarrow.dataset as ds
    runs = ds.dataset(["lab/runs.parquet", "cloud/runs.parquet"]).to_table()

What the columns mean (also in each field's Parquet metadata, ``description``):

* **Timestamps** (``created``, ``started_at``, tasks' ``start``/``end``) are
  ``timestamp[us, tz=UTC]`` from the wall clock of the machine that ran them.
* **Samples** are the meter's readings while a run's window was open: ``t`` is
  *seconds since that host's window opened* on a monotonic clock (not a wall-clock
  time), and ``joules`` is **cumulative** since the window opened, per domain:
  the energy between two samples is their difference, the window's energy is the
  last value. Each host and domain has at least the opening (``t`` 0, 0 J) and the
  closing reading, whatever the run's length. Domains overlap (``core-0`` lies
  inside ``package-0``), so never add domains up.
* **Settings** are columns on runs *and* on task rows (``workload``, ``framework``,
  ``mode``, ``size``, ``seed``, ``concurrency``, ``tasks``, ``num_cpus``, …) so tasks
  group without a join. ``tasks``/``num_cpus`` may be per stage in the configuration:
  ``tasks_json``/``num_cpus_json`` hold the setting as given (``8`` or
  ``{"pca": 2, "train": 8}``); on a run row ``tasks``/``num_cpus`` is that number when
  one number was given for every stage, else null; on a task row they are the values
  *its own stage* ran with.
* **Batches**: repeats of one configuration share ``parent_id`` (the combined result
  is a run of its own with ``combined`` = true, whose figures are medians over the
  repeats and whose tasks are a copy of its median repeat's, so leave combined runs out
  when adding tasks up); the trials of one tuning study share ``study`` (``trial`` is
  Optuna's number). The runs of one ``compare`` carry no common id in the store: its
  ``--json`` output lists them (``frameworks.<name>.run_ids``).
* ``meter``/``kind`` are the meter(s) that measured and whether that is ``measured``
  or ``modelled``; ``meter_setting`` is what was asked for (``auto``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rayjoule.core.errors import ConfigError
from rayjoule.runs.store import RunRecord, Store

#: bumped when a column changes meaning or type (in every file's schema metadata)
EXPORT_SCHEMA_VERSION = "1"
TABLES = ("runs", "tasks", "samples")

TIMESTAMP = pa.timestamp("us", tz="UTC")


def _field(name: str, type_: pa.DataType, description: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"description": description})


#: the run's identity and settings, on run rows and repeated on task rows
RUN_CONTEXT = (
    _field("workload", pa.string(), "workload or pipeline name", nullable=False),
    _field("framework", pa.string(), "native, ray or lithops", nullable=False),
    _field("mode", pa.string(), "tasks or actors (Ray's actor pool)"),
    _field("meter", pa.string(), "meter(s) that measured, e.g. rapl or tdp"),
    _field("kind", pa.string(), "measured (hardware counters) or modelled (an estimate)"),
    _field("status", pa.string(), "ok, failed, interrupted or running", nullable=False),
    _field("size", pa.float64(), "problem size (null when not a number; see config_json)"),
    _field("seed", pa.int64(), "random seed"),
    _field("concurrency", pa.int64(), "tasks run at once"),
    _field("tasks", pa.int64(), "run rows: tasks when one number for every stage, else null; "
                                "task rows: the tasks of the task's own stage"),
    _field("num_cpus", pa.float64(), "run rows: CPUs per task when one number for every "
                                     "stage, else null; task rows: its own stage's"),
    _field("tasks_json", pa.string(), "the tasks setting as given, JSON (number or "
                                      "stage → number)"),
    _field("num_cpus_json", pa.string(), "the num_cpus setting as given, JSON"),
    _field("parent_id", pa.string(), "the combined run this run is a repeat of"),
    _field("study", pa.string(), "the tuning study this run is a trial of"),
    _field("trial", pa.int64(), "the trial number within the study"),
    _field("combined", pa.bool_(), "a combined result of repeats (medians; tasks copied "
                                   "from the median repeat)", nullable=False),
)

RUNS_SCHEMA = pa.schema([
    _field("run_id", pa.string(), "run id", nullable=False),
    *RUN_CONTEXT,
    _field("created", TIMESTAMP, "when the run was registered (UTC)", nullable=False),
    _field("started_at", TIMESTAMP, "when its measurement started (UTC)"),
    _field("error", pa.string(), "what failed, for failed or interrupted runs"),
    _field("wall_s", pa.float64(), "wall time, seconds"),
    _field("total_j", pa.float64(), "energy of every host over the run, joules"),
    _field("static_j", pa.float64(), "idle power × wall time, joules"),
    _field("dynamic_j", pa.float64(), "total − static, joules"),
    _field("overhead_j", pa.float64(), "energy the tasks do not explain (framework, driver), "
                                       "joules"),
    _field("complete", pa.bool_(), "false when a host was lost mid-run"),
    _field("repeats", pa.int64(), "repeats asked for"),
    _field("idle_seconds", pa.float64(), "idle baseline length, seconds"),
    _field("tdp_scope", pa.string(), "tdp model scope: host or process"),
    _field("tdp_watts", pa.float64(), "TDP override for the tdp model, watts"),
    _field("cpu_threads", pa.int64(), "threads the TDP override is shared by"),
    _field("profile", pa.bool_(), "a profiling run"),
    _field("meter_setting", pa.string(), "the meter asked for (auto or a name)"),
    _field("params_json", pa.string(), "workload parameters, JSON"),
    # the list's item is named "element" as Parquet writes it, so a file reads back equal
    _field("stages", pa.list_(pa.field("element", pa.string())),
           "the pipeline's stages in order"),
    _field("config_json", pa.string(), "the run's whole configuration, JSON", nullable=False),
    _field("result_json", pa.string(), "the whole result without tasks (hosts, stages, "
                                       "summary), JSON"),
], metadata={"rayjoule.table": "runs", "rayjoule.export_schema": EXPORT_SCHEMA_VERSION})

TASKS_SCHEMA = pa.schema([
    _field("run_id", pa.string(), "run id", nullable=False),
    _field("stage", pa.string(), "pipeline stage (map for a single workload)", nullable=False),
    _field("task_id", pa.int64(), "task number within its stage", nullable=False),
    _field("node_id", pa.string(), "framework node id"),
    _field("host", pa.string(), "physical host (hostname:boot id)"),
    _field("pid", pa.int64(), "process id"),
    _field("start", TIMESTAMP, "task start (UTC)"),
    _field("end", TIMESTAMP, "task end (UTC)"),
    _field("wall_s", pa.float64(), "end − start, seconds"),
    _field("cpu_s", pa.float64(), "the task's own CPU time, seconds"),
    _field("slot_cpus", pa.float64(), "CPUs the framework reserved for it"),
    _field("static_j", pa.float64(), "its share of idle power by slot time, joules"),
    _field("dynamic_j", pa.float64(), "its CPU time × the host's dynamic joules per "
                                      "busy CPU-second, joules"),
    _field("energy_j", pa.float64(), "static + dynamic, joules"),
    _field("extra_json", pa.string(), "framework stats and self-metered energy, JSON"),
    *RUN_CONTEXT,
], metadata={"rayjoule.table": "tasks", "rayjoule.export_schema": EXPORT_SCHEMA_VERSION})

SAMPLES_SCHEMA = pa.schema([
    _field("run_id", pa.string(), "run id", nullable=False),
    _field("host", pa.string(), "physical host", nullable=False),
    _field("meter", pa.string(), "meter(s) read", nullable=False),
    _field("kind", pa.string(), "measured or modelled", nullable=False),
    _field("t", pa.float64(), "seconds since the host's window opened (monotonic clock)",
           nullable=False),
    _field("domain", pa.string(), "meter domain (domains overlap: never add them)",
           nullable=False),
    _field("joules", pa.float64(), "cumulative joules since the window opened", nullable=False),
], metadata={"rayjoule.table": "samples", "rayjoule.export_schema": EXPORT_SCHEMA_VERSION})

SCHEMAS = {"runs": RUNS_SCHEMA, "tasks": TASKS_SCHEMA, "samples": SAMPLES_SCHEMA}


@dataclass(frozen=True)
class ExportedTable:
    """One written Parquet file."""

    table: str
    path: Path
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "path": str(self.path), "rows": self.rows}


def export_parquet(store: Store, out_dir: str | Path) -> list[ExportedTable]:
    """Write ``runs``/``tasks``/``samples`` as ``<table>.parquet`` in ``out_dir``.

    Each file is written beside its final name and then moved over it, so a reader
    never sees half a file. Raises ConfigError naming the run when a stored setting
    does not have the type its column declares (a damaged store).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = _rows(store, "runs")
    records = {r.run_id: r for r in store.records()}
    contexts = {r["run_id"]: _RunContext.of(r, records[r["run_id"]]) for r in runs}
    tables = {
        "runs": _table(RUNS_SCHEMA, [contexts[r["run_id"]].run_row(r) for r in runs]),
        "tasks": _table(TASKS_SCHEMA, [_task_row(t, contexts.get(t["run_id"]))
                                       for t in _rows(store, "tasks")]),
        "samples": _table(SAMPLES_SCHEMA, _rows(store, "samples")),
    }
    written = []
    for name in TABLES:
        path = out / f"{name}.parquet"
        tmp = path.with_name(path.name + ".tmp")
        pq.write_table(tables[name], tmp)
        tmp.replace(path)
        written.append(ExportedTable(name, path, tables[name].num_rows))
    return written


def _rows(store: Store, name: str) -> list[dict[str, Any]]:
    columns, rows = store.table(name)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _table(schema: pa.Schema, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows → a table of exactly ``schema`` (an empty list keeps every column's type)."""
    return pa.Table.from_pydict({f.name: [r.get(f.name) for r in rows] for f in schema},
                                schema=schema)


@dataclass(frozen=True)
class _RunContext:
    """One run's settings, parsed once and repeated on each of its task rows."""

    columns: dict[str, Any]
    #: stage → (tasks, num_cpus) the stage ran with, from the result
    stages: dict[str, tuple[Any, Any]]
    config: dict[str, Any]
    result: dict[str, Any] | None

    @classmethod
    def of(cls, row: dict[str, Any], record: RunRecord) -> _RunContext:
        """``row`` as stored (exported as it is), ``record`` its parsed config and result."""
        run_id = row["run_id"]
        config, result = record.config, record.result
        tasks, num_cpus = config.get("tasks"), config.get("num_cpus")
        columns = {
            "workload": row["workload"], "framework": row["framework"],
            "mode": _str(config.get("mode")), "meter": row["meter"], "kind": row["kind"],
            "status": row["status"], "size": _number(config.get("size")),
            "seed": _int(run_id, "seed", config.get("seed")),
            "concurrency": _int(run_id, "concurrency", config.get("concurrency")),
            "tasks": None if isinstance(tasks, dict) else _int(run_id, "tasks", tasks),
            "num_cpus": None if isinstance(num_cpus, dict)
            else _float(run_id, "num_cpus", num_cpus),
            "tasks_json": None if tasks is None else json.dumps(tasks, sort_keys=True),
            "num_cpus_json": None if num_cpus is None else json.dumps(num_cpus, sort_keys=True),
            "parent_id": row["parent_id"], "study": row["study"],
            "trial": _int(run_id, "trial", row["trial"]),
            "combined": bool(result and result.get("repeats")),
        }
        stages = {s["name"]: (s.get("tasks"), s.get("num_cpus"))
                  for s in (result or {}).get("stages") or []}
        return cls(columns, stages, config, result)

    def run_row(self, row: dict[str, Any]) -> dict[str, Any]:
        run_id, c, result = row["run_id"], self.config, self.result
        started = (result or {}).get("started_at")
        return {
            **row, **self.columns,
            "created": _timestamp(row["created"]),
            "started_at": _timestamp(started) if started else None,  # 0.0: never started
            "complete": None if row["complete"] is None else bool(row["complete"]),
            "repeats": _int(run_id, "repeats", c.get("repeats")),
            "idle_seconds": _float(run_id, "idle_seconds", c.get("idle_seconds")),
            "tdp_scope": _str(c.get("tdp_scope")),
            "tdp_watts": _float(run_id, "tdp_watts", c.get("tdp_watts")),
            "cpu_threads": _int(run_id, "cpu_threads", c.get("cpu_threads")),
            "profile": None if c.get("profile") is None else bool(c["profile"]),
            "meter_setting": _str(c.get("meter")),
            "params_json": json.dumps(c.get("params") or {}, sort_keys=True),
            "stages": None if result is None else list(self.stages),
        }

    def stage_columns(self, run_id: str, stage: str) -> dict[str, Any]:
        """``tasks``/``num_cpus`` as the stage ran them (the result), else as configured."""
        tasks, num_cpus = self.stages.get(stage, (None, None))
        if tasks is None:
            tasks = _per_stage(self.config.get("tasks"), stage)
        if num_cpus is None:
            num_cpus = _per_stage(self.config.get("num_cpus"), stage)
        return {"tasks": _int(run_id, "tasks", tasks),
                "num_cpus": _float(run_id, "num_cpus", num_cpus)}


def _task_row(row: dict[str, Any], context: _RunContext | None) -> dict[str, Any]:
    run_id = row["run_id"]
    if context is None:  # the store's foreign key makes this a damaged store
        raise ConfigError(f"task {row['stage']}/{row['task_id']} belongs to run {run_id}, "
                          "which the store does not hold")
    start, end = row["start"], row["end"]
    return {
        **row, **context.columns, **context.stage_columns(run_id, row["stage"]),
        "start": _timestamp(start), "end": _timestamp(end),
        "wall_s": end - start if start is not None and end is not None else None,
    }


def _per_stage(value: Any, stage: str) -> Any:
    return value.get(stage) if isinstance(value, dict) else value


def _timestamp(seconds: float | None) -> int | None:
    """Epoch seconds → whole microseconds (what a ``timestamp[us]`` column holds)."""
    return None if seconds is None else round(float(seconds) * 1_000_000)


def _number(value: Any) -> float | None:
    """A size as a number; None when it is not one (the configuration keeps it as given)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _int(run_id: str, name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ConfigError(f"run {run_id}: {name} = {value!r} is not a whole number; "
                          "the store is damaged")
    return int(value)


def _float(run_id: str, name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"run {run_id}: {name} = {value!r} is not a number; "
                          "the store is damaged")
    return float(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
