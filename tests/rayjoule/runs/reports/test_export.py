"""``rayjoule.export``: Parquet files with fixed schemas that concatenate across exports."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from rayjoule.cli.common import run_command
from rayjoule.cli.export import main
from rayjoule.core.config import RunConfig
from rayjoule.core.errors import ConfigError
from rayjoule.core.result import (
    Energy,
    HostEnergy,
    MeterLabel,
    RunResult,
    StageResult,
    TaskRecord,
    combine_repeats,
)
from rayjoule.runs.reports.parquet_export import SCHEMAS, TABLES, TIMESTAMP, export_parquet
from rayjoule.runs.store import Store

T0 = 1_767_225_600.25  # 2026-01-01 00:00:00.25 UTC
RAPL = MeterLabel("rapl", "measured")


def _task(stage: str, task_id: int, energy_j: float) -> TaskRecord:
    return TaskRecord(task_id, "node-1", "h:1", 100 + task_id, T0 + 1.0, T0 + 1.5, 0.4,
                      stage=stage, slot_cpus=2.0, static_j=energy_j / 2,
                      dynamic_j=energy_j / 2, energy_j=energy_j)


def _result(run_id: str, config: RunConfig, total_j: float, stages: list[StageResult],
            tasks: list[TaskRecord]) -> RunResult:
    energy = Energy(total_j, 2.0, total_j - 2.0, {"package-0": total_j, "core-0": 1.0}, 0.5)
    return RunResult(run_id=run_id, workload=config.workload, framework=config.framework,
                     config=config.to_dict(), wall_s=2.0, energy=energy, meter=RAPL,
                     tasks=tasks, summary={"ok": True},
                     hosts=[HostEnergy("h:1", RAPL, energy, 1.0, "measured")],
                     started_at=T0 + 0.5, stages=stages)


def _pipeline_run(store: Store, run_id: str = "pipe1") -> None:
    """A pipeline run on Ray with per-stage settings, its tasks and two meter samples."""
    config = RunConfig(workload="ml", framework="ray", tasks={"pca": 1, "train": 3},
                       num_cpus={"train": 2.0}, concurrency=4, size=2000, seed=7, meter="auto")
    stages = [StageResult("pca", 1, 1.0, 0.5, Energy(1.0, 0.5, 0.5)),
              StageResult("train", 3, 2.0, 1.5, Energy(6.0, 1.0, 5.0))]
    tasks = [_task("pca", 0, 1.0), *(_task("train", i, 2.0) for i in range(3))]
    store.begin(run_id, workload="ml", framework="ray", config=config.to_dict())
    store.finish(_result(run_id, config, 7.5, stages, tasks))
    store.add_samples(run_id, [("h:1", "rapl", "measured", 0.5, "package-0", 2.0),
                               ("h:1", "rapl", "measured", 1.0, "package-0", 5.0)])


def _repeated_runs(store: Store) -> None:
    """Two repeats of a one-stage workload on native, and their combined result."""
    config = RunConfig(workload="pi", framework="native", tasks=2, num_cpus=1.0,
                       concurrency=2, size=1e6, repeats=2)
    stages = [StageResult("map", 2, 1.0, 1.0, Energy(3.0, 1.0, 2.0))]
    results = []
    for i, total in enumerate((3.0, 5.0)):
        store.begin(f"rep{i}", workload="pi", framework="native", config=config.to_dict(),
                    parent_id="parent")
        results.append(_result(f"rep{i}", config, total, stages,
                               [_task("map", 0, 1.0), _task("map", 1, 1.0)]))
        store.finish(results[-1])
    store.begin("parent", workload="pi", framework="native", config=config.to_dict())
    store.finish(combine_repeats("parent", results))


def _failed_run(store: Store) -> None:
    """Registered, then failed before any result: every figure is null."""
    config = RunConfig(workload="pi", framework="native", tasks=2, concurrency=2)
    store.begin("broken", workload="pi", framework="native", config=config.to_dict(),
                study="s1", trial=3)
    store.fail("broken", "ValueError: boom")


def _export(tmp_path: Path, name: str, *fill) -> Path:
    with Store(tmp_path / f"{name}.sqlite") as store:
        for f in fill:
            f(store)
        export_parquet(store, tmp_path / name)
    return tmp_path / name


def _read(folder: Path, table: str) -> pa.Table:
    return pq.read_table(folder / f"{table}.parquet")


def test_the_schema_is_the_same_for_an_empty_store_a_sparse_one_and_a_full_one(tmp_path):
    empty = _export(tmp_path, "empty")
    sparse = _export(tmp_path, "sparse", _failed_run)  # the figures' columns all null
    full = _export(tmp_path, "full", _pipeline_run, _repeated_runs, _failed_run)
    for table in TABLES:
        for folder in (empty, sparse, full):
            schema = pq.read_schema(folder / f"{table}.parquet")
            assert schema.equals(SCHEMAS[table], check_metadata=True), (table, folder.name)
        assert _read(empty, table).num_rows == 0
    assert _read(sparse, "runs").column("total_j").null_count == 1
    assert _read(full, "runs").num_rows == 5 and _read(full, "tasks").num_rows == 4 + 2 * 3
    assert _read(full, "samples").num_rows == 2
    # the field docs travel in the files
    field = pq.read_schema(full / "samples.parquet").field("joules")
    assert b"cumulative" in field.metadata[b"description"]


def test_times_are_utc_timestamps_and_samples_stay_seconds_into_the_window(tmp_path):
    before = time.time()
    out = _export(tmp_path, "full", _pipeline_run)
    runs, tasks, samples = (_read(out, t) for t in TABLES)
    for table, column in ((runs, "created"), (runs, "started_at"), (tasks, "start"),
                          (tasks, "end")):
        assert table.schema.field(column).type == TIMESTAMP == pa.timestamp("us", tz="UTC")
    [created] = runs.column("created").to_pylist()
    assert created.tzinfo is not None and created.timestamp() >= before - 1
    assert runs.column("started_at").to_pylist() == [datetime.fromtimestamp(T0 + 0.5, UTC)]
    assert set(tasks.column("start").to_pylist()) == {datetime.fromtimestamp(T0 + 1.0, UTC)}
    assert tasks.column("wall_s").to_pylist() == [0.5] * 4
    assert samples.schema.field("t").type == pa.float64()
    assert samples.column("t").to_pylist() == [0.5, 1.0]  # not wall-clock times
    assert samples.column("joules").to_pylist() == [2.0, 5.0]  # cumulative in the window


def test_settings_are_columns_on_runs_and_task_rows_carry_their_stage_and_run(tmp_path):
    out = _export(tmp_path, "full", _pipeline_run, _repeated_runs, _failed_run)
    runs = {r["run_id"]: r for r in _read(out, "runs").to_pylist()}
    pipe = runs["pipe1"]
    assert pipe["tasks"] is None and json.loads(pipe["tasks_json"]) == {"pca": 1, "train": 3}
    assert pipe["num_cpus"] is None and json.loads(pipe["num_cpus_json"]) == {"train": 2.0}
    assert (pipe["workload"], pipe["framework"], pipe["mode"], pipe["status"]) == \
        ("ml", "ray", "tasks", "ok")
    assert (pipe["size"], pipe["seed"], pipe["concurrency"]) == (2000.0, 7, 4)
    assert (pipe["meter"], pipe["kind"], pipe["meter_setting"]) == ("rapl", "measured", "auto")
    assert pipe["stages"] == ["pca", "train"] and pipe["total_j"] == 7.5
    assert pipe["complete"] is True and pipe["combined"] is False

    # one number for every stage: the number itself
    assert (runs["rep0"]["tasks"], runs["rep0"]["num_cpus"]) == (2, 1.0)
    assert runs["rep0"]["parent_id"] == runs["rep1"]["parent_id"] == "parent"
    assert runs["parent"]["combined"] is True and runs["rep0"]["combined"] is False
    assert (runs["broken"]["status"], runs["broken"]["study"], runs["broken"]["trial"]) == \
        ("failed", "s1", 3)
    assert runs["broken"]["stages"] is None and runs["broken"]["started_at"] is None

    tasks = _read(out, "tasks").to_pylist()
    pca = next(t for t in tasks if t["run_id"] == "pipe1" and t["stage"] == "pca")
    train = next(t for t in tasks if t["run_id"] == "pipe1" and t["stage"] == "train")
    assert (pca["tasks"], pca["num_cpus"]) == (1, 1.0)  # each task row: its own stage's
    assert (train["tasks"], train["num_cpus"]) == (3, 2.0)
    assert (train["framework"], train["kind"], train["workload"]) == ("ray", "measured", "ml")
    assert json.loads(train["tasks_json"]) == {"pca": 1, "train": 3}
    parent_tasks = [t for t in tasks if t["run_id"] == "parent"]
    assert parent_tasks and all(t["combined"] and t["framework"] == "native"
                                for t in parent_tasks)


def test_exports_of_different_stores_read_as_one_dataset(tmp_path):
    lab = _export(tmp_path, "lab", _pipeline_run)
    cloud = _export(tmp_path, "cloud", _failed_run)  # all-null figures: types still agree
    for table in TABLES:
        merged = ds.dataset([lab / f"{table}.parquet", cloud / f"{table}.parquet"],
                            format="parquet").to_table()
        assert merged.num_rows == _read(lab, table).num_rows + _read(cloud, table).num_rows
        assert merged.schema.equals(SCHEMAS[table])
    runs = ds.dataset([lab / "runs.parquet", cloud / "runs.parquet"]).to_table()
    assert sorted(runs.column("run_id").to_pylist()) == ["broken", "pipe1"]
    assert runs.column("total_j").to_pylist().count(None) == 1


def test_the_command_writes_json_checks_paths_first_and_refuses_foreign_files(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    with Store(db) as store:
        _pipeline_run(store)
    out, report = tmp_path / "pq", tmp_path / "export.json"
    assert run_command(main, ["--db", str(db), "--out", str(out), "--json", str(report)]) == 0
    files = json.loads(report.read_text())["files"]
    assert [(f["table"], f["rows"]) for f in files] == [("runs", 1), ("tasks", 4),
                                                        ("samples", 2)]
    assert all(Path(f["path"]).is_file() for f in files)
    assert "tasks           4 rows" in capsys.readouterr().out

    # a --json that is a folder, or an --out under a missing folder: refused before any work
    fresh = tmp_path / "fresh"
    for argv in (["--out", str(fresh), "--json", str(tmp_path)],
                 ["--out", str(tmp_path / "missing" / "pq")]):
        assert run_command(main, ["--db", str(db), *argv]) == 2
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith("rayjoule: error: --")
    assert not fresh.exists()

    # not a rayjoule store: one line, exit 2, the file untouched
    foreign = tmp_path / "optuna.db"
    with sqlite3.connect(foreign) as con:
        con.execute("CREATE TABLE studies (id INTEGER)")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not sqlite at all" * 64)
    for path in (foreign, junk):
        before = path.read_bytes()
        assert run_command(main, ["--db", str(path), "--out", str(fresh)]) == 2
        [line] = capsys.readouterr().err.splitlines()
        assert "not" in line and "rayjoule" in line, line
        assert path.read_bytes() == before
    assert not fresh.exists()


@pytest.mark.parametrize("bad", [{"seed": "seven"}, {"tasks": 2.5}])
def test_a_damaged_setting_is_named_not_silently_dropped(tmp_path, bad):
    with Store(tmp_path / "r.sqlite") as store:
        config = {**RunConfig(workload="pi", tasks=2).to_dict(), **bad}
        store.begin("odd", workload="pi", framework="native", config=config)
        with pytest.raises(ConfigError, match=f"run odd: {next(iter(bad))} = "):
            export_parquet(store, tmp_path / "out")
