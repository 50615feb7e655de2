"""Metered runs on the native framework with the tdp model (the meter this VM really has)."""

import math

import pytest

import workloads
from rayjoule import RunConfig, RunFailed, run
from rayjoule.runs.store import Store
from tests_support import failing_workloads as fw


def cfg(**kw):
    base = dict(workload="pi", size=2_000_000, framework="native", tasks=4, concurrency=1,
                meter="tdp", idle_seconds=0)
    base.update(kw)
    return RunConfig(**base)


def test_native_summary_matches_the_serial_reference(tmp_path):
    r1 = run(cfg(concurrency=1), db=tmp_path / "r.sqlite")
    r2 = run(cfg(concurrency=2), db=tmp_path / "r.sqlite")
    ref = workloads.execute("pi", size=2_000_000, tasks=1, seed=0)
    assert r1.summary == r2.summary == ref
    assert r1.meter.name == "tdp" and r1.meter.kind == "modelled"
    assert len({t.pid for t in r2.tasks}) == 2  # a real pool of two processes


def test_attribution_conserves_each_hosts_energy_with_overhead(tmp_path):
    r = run(cfg(concurrency=2, tasks=6), db=tmp_path / "r.sqlite")
    for host in r.hosts:
        tasks_j = math.fsum(t.energy_j for t in r.tasks if t.host == host.host)
        assert tasks_j + host.overhead_j == pytest.approx(host.energy.total_j, rel=1e-9)
    assert math.fsum(t.energy_j for t in r.tasks) + r.energy.overhead_j == \
        pytest.approx(r.energy.total_j, rel=1e-9)
    assert all(t.energy_j == pytest.approx(t.static_j + t.dynamic_j) for t in r.tasks)
    assert r.energy.total_j == pytest.approx(r.energy.static_j + r.energy.dynamic_j)
    assert r.energy.static_j == pytest.approx(r.hosts[0].idle_w * r.wall_s)


def test_each_host_says_how_long_its_meter_window_was(tmp_path):
    """The window opens before the work and closes after it: at least the run's wall time,
    and kept in the stored JSON (the run-power gauge divides the host's joules by it)."""
    db = tmp_path / "r.sqlite"
    r = run(cfg(concurrency=2, tasks=2), db=db)
    [host] = r.hosts
    assert r.wall_s <= host.window_s < r.wall_s + 30
    with Store(db) as store:
        [stored] = store.get(r.run_id).hosts
    assert stored.window_s == host.window_s


SLEEP_VS_PI = """
import json, sys
from rayjoule import RunConfig, run
common = dict(framework="native", tasks=2, concurrency=1, meter="tdp", idle_seconds=0,
              tdp_scope="process")
sleep = run(RunConfig(workload="sleep", size=1.0, **common), db=sys.argv[1])
pi = run(RunConfig(workload="pi", size=200_000_000, **common), db=sys.argv[1])
print(json.dumps({"sleep": sleep.to_dict(), "pi": pi.to_dict()}))
"""


def test_sleep_costs_almost_no_dynamic_energy_while_pi_does(tmp_path):
    # A fresh interpreter: the process-scope model charges this process's tree, and in the
    # test session that tree holds the shared Ray instance's daemons.
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", SLEEP_VS_PI, str(tmp_path / "r.sqlite")],
                          capture_output=True, text=True, timeout=120, check=True)
    out = json.loads(proc.stdout)
    sleep, pi = (out[k] for k in ("sleep", "pi"))
    pi_w = pi["energy"]["dynamic_j"] / pi["wall_s"]
    sleep_w = sleep["energy"]["dynamic_j"] / sleep["wall_s"]
    assert pi_w > 0.5
    assert sleep_w < 0.05 * pi_w, (sleep_w, pi_w)


def test_repeats_store_every_repeat_and_medians(tmp_path):
    db = tmp_path / "r.sqlite"
    r = run(cfg(repeats=3, size=200_000), db=db)
    assert len(r.repeats) == 3
    assert r.energy.total_j == sorted(x.energy.total_j for x in r.repeats)[1]
    with Store(db) as s:
        assert len(s.runs(parent_id=r.run_id)) == 3
        assert s.get(r.run_id).to_dict() == r.to_dict()


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_task_that_raises_fails_the_run_and_stores_it(tmp_path, concurrency):
    db = tmp_path / "r.sqlite"
    with pytest.raises(RunFailed, match="ValueError: this chunk is cursed"):
        run(cfg(workload="sleep", size=0.01, concurrency=concurrency), db=db,
            workload=fw.raising())
    with Store(db) as s:
        (row,) = s.runs()
    assert row["status"] == "failed" and "cursed" in row["error"]
    assert row["total_j"] is not None  # the energy measured until the failure is kept


def test_a_killed_worker_process_fails_the_run_clearly(tmp_path):
    db = tmp_path / "r.sqlite"
    with pytest.raises(RunFailed, match="worker process died"):
        run(cfg(workload="sleep", size=0.01, concurrency=2), db=db, workload=fw.killing())
    with Store(db) as s:
        assert [r["status"] for r in s.runs()] == ["failed"]
