"""Metered runs on a shared local Ray instance (2 CPUs)."""

import math

import pytest

import workloads
from rayjoule import RunConfig, RunFailed, run
from rayjoule.runs.store import Store
from tests_support import failing_workloads as fw


def cfg(**kw):
    base = dict(workload="pi", size=2_000_000, framework="ray", tasks=8, concurrency=2,
                meter="tdp", idle_seconds=0)
    base.update(kw)
    return RunConfig(**base)


@pytest.mark.parametrize("mode", ["tasks", "actors"])
def test_ray_summary_equals_native_and_reference(ray_session, tmp_path, mode):
    db = tmp_path / "r.sqlite"
    r = run(cfg(mode=mode), db=db)
    native = run(cfg(framework="native"), db=db)
    assert r.summary == native.summary == workloads.execute("pi", size=2_000_000, tasks=3)
    assert len(r.tasks) == 8 and {t.task_id for t in r.tasks} == set(range(8))
    node_ids = {n["NodeID"] for n in ray_session.nodes()}
    assert {t.node_id for t in r.tasks} <= node_ids
    assert r.meter.kind == "modelled"


def test_ray_split_conserves_energy(ray_session, tmp_path):
    r = run(cfg(), db=tmp_path / "r.sqlite")
    assigned = math.fsum(t.energy_j for t in r.tasks)
    overhead = math.fsum(h.overhead_j for h in r.hosts)
    assert assigned + overhead == pytest.approx(r.energy.total_j, rel=1e-9)
    assert overhead == pytest.approx(r.energy.overhead_j)
    assert all(t.cpu_s > 0 for t in r.tasks)


def test_one_meter_actor_per_physical_host(ray_session, tmp_path):
    from rayjoule.cluster.hosts import host_key

    run(cfg(size=100_000), db=tmp_path / "r.sqlite")
    run(cfg(size=100_000), db=tmp_path / "r.sqlite")
    names = [a["name"] for a in ray_session.util.list_named_actors(all_namespaces=True)
             if a["name"].startswith("rayjoule-meter:")]
    assert names == [f"rayjoule-meter:{host_key()}"]


@pytest.mark.parametrize("mode", ["tasks", "actors"])
def test_a_ray_task_that_raises_fails_and_is_stored(ray_session, tmp_path, mode):
    fw.ship_by_value()
    db = tmp_path / "r.sqlite"
    with pytest.raises(RunFailed, match="ValueError: this chunk is cursed"):
        run(cfg(workload="sleep", size=0.01, tasks=2, mode=mode), db=db, workload=fw.raising())
    with Store(db) as s:
        assert [r["status"] for r in s.runs()] == ["failed"]


def test_a_killed_ray_worker_fails_the_run_clearly(ray_session, tmp_path):
    fw.ship_by_value()
    db = tmp_path / "r.sqlite"
    with pytest.raises(RunFailed, match="died"):
        run(cfg(workload="sleep", size=0.01, tasks=1), db=db, workload=fw.killing())
    with Store(db) as s:
        assert [r["status"] for r in s.runs()] == ["failed"]


def test_more_actors_than_the_cluster_can_place_still_completes(ray_session, tmp_path):
    r = run(cfg(mode="actors", num_cpus=2.0, concurrency=4, tasks=4, size=400_000),
            db=tmp_path / "r.sqlite")
    assert len(r.tasks) == 4 and len({t.pid for t in r.tasks}) == 1  # one 2-CPU actor fits


def test_num_cpus_beyond_the_cluster_is_bad_input(ray_session, tmp_path):
    from rayjoule.core.errors import ConfigError

    with pytest.raises(ConfigError, match="exceeds the cluster"):
        run(cfg(num_cpus=3.0), db=tmp_path / "r.sqlite")


def test_the_actor_pool_is_reused_across_repeats_and_removed_after(ray_session, tmp_path):
    r = run(cfg(mode="actors", repeats=3, size=400_000), db=tmp_path / "r.sqlite")
    pids = [{t.pid for t in rep.tasks} for rep in r.repeats]
    assert pids[0] == pids[1] == pids[2] and len(pids[0]) == 2
    live = [a for a in ray_session.util.list_named_actors(all_namespaces=True)
            if a["name"].startswith("rayjoule-worker")]
    assert live == []
