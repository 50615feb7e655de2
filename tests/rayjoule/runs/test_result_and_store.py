import json
import os
import sqlite3

import pytest

from rayjoule.core.errors import ConfigError, StoreFailed
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


UNOPENABLE = [p for p in ("/proc/rayjoule-test.sqlite",) if os.path.isdir(os.path.dirname(p))]


@pytest.mark.parametrize("path", UNOPENABLE)
def test_a_store_that_sqlite_cannot_open_is_one_clear_config_error(path):
    """A folder where no file can be created (here procfs, which refuses even root)."""
    with pytest.raises(ConfigError, match="cannot be opened as a results store"):
        Store(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_a_store_in_a_folder_that_cannot_be_written_is_refused(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="not writable"):
            Store(folder / "r.sqlite")
    finally:
        folder.chmod(0o700)
    assert list(folder.iterdir()) == []


def test_a_read_only_store_reads_runs_and_never_writes(tmp_path):
    db = tmp_path / "r.sqlite"
    with Store(db) as s:
        s.begin("r1", workload="pi", framework="native", config={"size": 3})
        s.finish(make_result("r1"))
    before = sorted(p.name for p in tmp_path.iterdir())
    with Store.open_read_only(db) as s:
        assert s.read_only
        (record,) = s.records()
        assert (record.run_id, record.status, record.config) == ("r1", "ok", {"size": 3})
        with pytest.raises(StoreFailed, match="readonly"):
            s.fail("r1", "boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    with Store(db) as s:
        assert s.get_row("r1")["status"] == "ok"


def test_a_read_only_open_refuses_what_is_not_a_store_and_leaves_it_alone(tmp_path):
    foreign = tmp_path / "optuna.sqlite"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE studies (id INTEGER)")
    db.commit()
    db.close()
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not sqlite" * 100)
    snapshot = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for path, message in [(foreign, r"not a rayjoule results store \(tables: studies\)"),
                          (empty, r"not a rayjoule results store \(no tables\)"),
                          (junk, "not a usable"), (tmp_path / "nope.sqlite", "not found"),
                          (tmp_path, "not a file")]:
        with pytest.raises(ConfigError, match=message):
            Store.open_read_only(path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == snapshot


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


# -- the run recorder: one way a run's final state is written -------------------------
class RefusingStore(Store):
    """A store whose disk refuses the result (the run's row itself was written)."""

    def finish(self, result):
        raise OSError("disk full")


@pytest.mark.parametrize("error, status, text", [
    (None, "ok", None),
    (ValueError("boom"), "failed", "ValueError: boom"),
    (ConfigError("size must be > 0"), "failed", "size must be > 0"),
    (KeyboardInterrupt(), "interrupted", "interrupted (KeyboardInterrupt)"),
])
def test_the_recorder_stores_each_outcome_with_one_error_text(tmp_path, error, status, text):
    from rayjoule.runs.recorder import RunRecorder

    with Store(tmp_path / "r.sqlite") as store:
        with_result, without = RunRecorder(store, "r1"), RunRecorder(store, "r2")
        for rec in (with_result, without):
            rec.begin(workload="pi", framework="native", config={})
        stored = with_result.finish(make_result("r1"), error)
        assert (stored.status, stored.error) == (status, text)
        assert store.get("r1").status == status and store.get_row("r1")["error"] == text
        if error is not None:
            assert without.finish(None, error) is None
            assert (store.get_row("r2")["status"], store.get_row("r2")["error"]) == \
                (status, text)


def test_the_recorder_marks_a_run_failed_when_the_store_refuses_its_result(tmp_path):
    from rayjoule.runs.recorder import RunRecorder

    with RefusingStore(tmp_path / "r.sqlite") as store:
        rec = RunRecorder(store, "r1")
        rec.begin(workload="pi", framework="native", config={})
        with pytest.raises(OSError, match="disk full"):
            rec.finish(make_result("r1"), None)
        row = store.get_row("r1")
    assert (row["status"], row["error"]) == ("failed", "storing the result failed: "
                                             "OSError: disk full")


def test_a_recorder_without_a_store_returns_the_result_and_writes_nothing():
    from rayjoule.runs.recorder import RunRecorder

    rec = RunRecorder(None, "r1")
    rec.begin(workload="pi", framework="native", config={})
    assert rec.finish(make_result("r1"), RuntimeError("x")).error == "RuntimeError: x"


def test_a_write_while_another_process_holds_the_lock_is_busy_and_stores_nothing(tmp_path):
    """A lock taken after the store opened (another command's write, mid-run) fails the
    write past the wait with StoreBusy — the work's failure, not bad input — and leaves
    the runs stored before it whole; once the lock is gone the store writes again."""
    from rayjoule.core.errors import StoreBusy

    db = tmp_path / "r.sqlite"
    with Store(db, busy_wait_s=0.1) as store:
        store.begin("r1", workload="pi", framework="native", config={})
        store.finish(make_result("r1"))
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreBusy, match="is busy") as caught:
                store.begin("r2", workload="pi", framework="native", config={})
            assert isinstance(caught.value, StoreFailed)
            with pytest.raises(StoreBusy):
                store.finish(make_result("r1", total=99.0))
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert store.get_row("r2") is None
        assert store.get("r1").energy.total_j == 10.0 and len(store.tasks("r1")) == 2
        store.begin("r2", workload="pi", framework="native", config={})
        assert store.get_row("r2")["status"] == "running"


def test_a_store_locked_by_another_process_when_opened_is_busy_and_unchanged(tmp_path):
    """Opening a store another process is writing to waits, then gives up with StoreBusy
    (exit 1 at the command line, not bad input), having changed nothing."""
    from rayjoule.core.errors import StoreBusy

    db = tmp_path / "r.sqlite"
    with Store(db) as store:
        store.begin("r1", workload="pi", framework="native", config={})
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        before = db.read_bytes()
        with pytest.raises(StoreBusy, match="is busy"):
            Store(db, busy_wait_s=0.1)
        assert db.read_bytes() == before
    finally:
        other.execute("ROLLBACK")
        other.close()
