"""The comparator and the Lithops framework, on small sizes."""

import json
import subprocess
import sys

import pytest

import workloads
from rayjoule import RunConfig, RunFailed, run
from rayjoule.comparing.comparator import compare
from rayjoule.core.errors import ConfigError
from rayjoule.core.stats import median_ci
from rayjoule.runs.store import Store
from tests_support import failing_workloads as fw


def base(**kw):
    cfg = dict(workload="pi", size=1_000_000, framework="native", tasks=2, concurrency=2,
               meter="tdp", idle_seconds=0)
    cfg.update(kw)
    return RunConfig(**cfg)


def test_lithops_runs_the_same_chunks_with_the_same_summary(tmp_path):
    r = run(base(framework="lithops"), db=tmp_path / "r.sqlite")
    assert r.summary == workloads.execute("pi", size=1_000_000)
    assert len(r.tasks) == 2 and all(t.cpu_s > 0 for t in r.tasks)
    import os

    assert os.getpid() not in {t.pid for t in r.tasks}  # each call ran in a Lithops worker


def test_lithops_missing_is_a_clear_config_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "lithops", None)  # import lithops → ImportError
    with pytest.raises(ConfigError, match=r"rayjoule\[lithops\]"):
        run(base(framework="lithops"), db=tmp_path / "r.sqlite")


def test_compare_interleaves_and_reports_overheads(ray_session, tmp_path):
    order = []
    with Store(tmp_path / "r.sqlite") as store:
        report = compare(base(), ["native", "ray", "lithops"], 2, store,
                         on_run=lambda r: order.append(r.framework))
    assert order == ["native", "ray", "lithops"] * 2
    assert report["summaries_compared"] == 6 and report["steady_repeats"] == 1
    assert set(report["frameworks"]) == {"native", "ray", "lithops"}
    assert "overhead_j" not in report["frameworks"]["native"]
    for name in ("ray", "lithops"):
        e = report["frameworks"][name]
        lo, hi = e["overhead_j"]["ci95"]
        assert lo <= e["overhead_j"]["median"] <= hi
        assert e["overhead_j_per_task"]["median"] == pytest.approx(e["overhead_j"]["median"] / 2)
    for e in report["frameworks"].values():  # start-up = cold repeat − steady median
        cold, steady = e["startup"]["total_j"]["median"], e["total_j"]["median"]
        assert cold + steady > 0
        lo, hi = e["startup"]["total_j"]["ci95"]
        assert lo <= cold <= hi
    assert report["meter"] == {"name": "tdp", "kind": "modelled"}


def test_compare_runs_share_a_batch_id_in_the_store(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        report = compare(base(), ["native"], 2, store)
        studies = {row["study"] for row in store.runs()}
    assert len(studies) == 1 and next(iter(studies)).startswith("compare-")
    assert len(report["frameworks"]["native"]["run_ids"]) == 2


def test_compare_fails_loudly_when_frameworks_disagree(ray_session, tmp_path):
    fw.ship_by_value()
    with Store(tmp_path / "r.sqlite") as store, \
            pytest.raises(RunFailed, match="disagree on the workload's summary"):
        compare(base(workload="sleep", size=0.01), ["native", "ray"], 1, store,
                workload=fw.nondeterministic())


def test_median_ci_on_known_samples():
    assert median_ci([5.0] * 7) == {"median": 5.0, "ci95": [5.0, 5.0]}
    assert set(median_ci([1.0, 2.0], level=0.9)) == {"median", "ci90"}
    out = median_ci([1.0, 2.0, 3.0, 4.0, 100.0])
    assert out["median"] == 3.0
    lo, hi = out["ci95"]
    assert 1.0 <= lo <= 3.0 <= hi <= 100.0
    assert median_ci([1.0, 2.0, 3.0, 4.0, 100.0]) == out  # seeded: reproducible
    with pytest.raises(ValueError):
        median_ci([])


@pytest.mark.parametrize("args, message", [
    (["--workload", "nope"], "unknown workload"),
    (["--frameworks", "native,spark"], "framework must be one of"),
    (["--repeats", "0"], "--repeats"),
    (["--tasks", "0"], "tasks must be >= 1"),
    (["--meter", "rapl"], "rapl"),
])
def test_compare_bad_input_is_one_line_exit_2(tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "rayjoule.compare", "--db",
                           str(tmp_path / "r.sqlite"), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_compare_cli_writes_json_and_plot(tmp_path):
    out = tmp_path / "c.json"
    proc = subprocess.run([sys.executable, "-m", "rayjoule.compare", "--frameworks",
                           "native,lithops", "--size", "200000", "--repeats", "2", "--meter",
                           "tdp", "--idle-seconds", "0", "--db", str(tmp_path / "r.sqlite"),
                           "--json", str(out), "--plot", str(tmp_path / "plots")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["summaries_compared"] == 4 and data["repeats"] == 2
    assert set(data["frameworks"]["lithops"]) >= {"wall_s", "total_j", "dynamic_j", "tasks_j",
                                                  "attributed_overhead_j", "startup",
                                                  "overhead_j", "overhead_j_per_task"}
    assert (tmp_path / "plots" / "compare_pi.png").stat().st_size > 1000


def test_framework_specs_pick_rays_mode():
    from rayjoule.comparing.comparator import config_for

    assert config_for(base(), "ray:actors").mode == "actors"
    assert config_for(base(mode="tasks"), "ray").mode == "tasks"
    assert config_for(base(), "lithops").framework == "lithops"
    with pytest.raises(ConfigError, match="only ray takes a mode"):
        config_for(base(), "native:actors")


def test_lithops_tasks_keep_the_futures_timings(tmp_path):
    r = run(base(framework="lithops"), db=tmp_path / "r.sqlite")
    for t in r.tasks:
        stats = t.framework_stats
        assert stats["worker_start_tstamp"] <= stats["worker_end_tstamp"]
        assert stats["worker_func_exec_time"] >= 0
    from rayjoule.core.result import RunResult

    assert RunResult.from_dict(r.to_dict()) == r
