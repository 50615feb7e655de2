import json
import sqlite3

import pytest

from rayjoule.core.errors import ConfigError
from rayjoule.core.result import (
    Energy,
    HostEnergy,
    MeterLabel,
    RunResult,
    TaskRecord,
    combine_repeats,
)
from rayjoule.runs.store import Store, open_existing


def make_result(run_id="r1", total=10.0, wall=2.0):
    return RunResult(
        run_id=run_id, workload="pi", framework="native", config={"tasks": 2},
        wall_s=wall, energy=Energy(total, 4.0, total - 4.0, {"cpu": total}),
        meter=MeterLabel("tdp", "modelled"),
        tasks=[TaskRecord(0, "n", "h", 1, 0.0, 1.0, 0.9, static_j=1.0, dynamic_j=2.0,
                          energy_j=3.0),
               TaskRecord(1, "n", "h", 2, 0.0, 1.0, 1.1, static_j=1.0, dynamic_j=2.0,
                          energy_j=3.0, framework_stats={"worker_cold_start": True})],
        summary={"estimate": 3.14, "points": 100},
        hosts=[HostEnergy("h", MeterLabel("tdp", "modelled"),
                          Energy(total, 4.0, total - 4.0, {"cpu": total}), 2.0, "model")],
    )


def test_run_result_round_trips_through_dict_and_json():
    r = make_result()
    assert RunResult.from_dict(json.loads(json.dumps(r.to_dict()))) == r


def test_combine_repeats_takes_medians_and_keeps_every_repeat():
    rs = [make_result(f"r{i}", total=t, wall=w) for i, (t, w) in
          enumerate([(10.0, 1.0), (30.0, 3.0), (20.0, 2.0)])]
    c = combine_repeats("parent", rs)
    assert c.energy.total_j == 20.0 and c.wall_s == 2.0
    assert len(c.repeats) == 3 and c.spread["total_j"]["max"] == 30.0
    assert RunResult.from_dict(c.to_dict()) == c
    assert set(c.to_dict()) >= {"repeats", "run_id", "energy", "meter", "tasks", "summary"}


def test_store_keeps_running_failed_and_finished_runs(tmp_path):
    db = tmp_path / "r.sqlite"
    with Store(db) as s:
        s.begin("r1", workload="pi", framework="native", config={})
        s.begin("r2", workload="pi", framework="native", config={})
        s.finish(make_result("r1"))
        s.fail("r2", "boom")
        s.add_samples("r1", [("h", "tdp", "modelled", 0.5, "cpu", 1.0)])
    with open_existing(db) as s:
        assert s.get("r1") == make_result("r1")
        assert s.get_row("r2")["status"] == "failed" and s.get_row("r2")["error"] == "boom"
        assert [t.task_id for t in s.tasks("r1")] == [0, 1]
        assert len(s.table("samples")[1]) == 1
        assert [r["run_id"] for r in s.runs(status="failed")] == ["r2"]
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_rejects_bad_paths(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Store(tmp_path / "missing" / "r.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="not a usable"):
        Store(junk)
    assert junk.read_bytes() == b"this is not sqlite" * 100
    with pytest.raises(ConfigError, match="not found"):
        open_existing(tmp_path / "nope.sqlite")


def test_export_parquet_is_readable_by_pandas(tmp_path):
    import pandas as pd

    from rayjoule.cli.export import export_parquet

    with Store(tmp_path / "r.sqlite") as s:
        s.begin("r1", workload="pi", framework="native", config={})
        s.finish(make_result("r1"))
        paths = export_parquet(s, tmp_path / "out")
    runs = pd.read_parquet(tmp_path / "out" / "runs.parquet")
    tasks = pd.read_parquet(tmp_path / "out" / "tasks.parquet")
    assert list(runs["run_id"]) == ["r1"] and runs["total_j"][0] == 10.0
    assert len(tasks) == 2 and len(paths) == 3


def test_records_parse_config_and_result_and_imported_runs_are_time_only(tmp_path):
    from rayjoule.runs.store import ImportedRun, Store

    with Store(tmp_path / "s.sqlite") as store:
        store.begin("r1", workload="pi", framework="native", config={"tasks": 4})
        ids = store.add_imported([ImportedRun("i1", "wc", "lithops", 1.5,
                                              {"tasks": 2}, {"stages": []})])
        assert ids == ["i1"]
        running = store.record("r1")
        assert running.status == "running" and running.config == {"tasks": 4}
        assert running.result is None and running.total_j is None
        (imported,) = store.records(workload="wc")
        assert imported.status == "ok" and imported.wall_s == 1.5
        assert imported.result == {"stages": []} and imported.total_j is None
        assert store.record("absent") is None
