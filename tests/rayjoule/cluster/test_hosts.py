"""Hosts: lost mid-run, metered inside remote calls, described with every run."""

from __future__ import annotations

import math
import sys
import time

import pytest
from rich.console import Console

from rayjoule import RunConfig, run
from rayjoule.cli.render import print_run
from rayjoule.frameworks.job import plan_job
from rayjoule.metering.meter_actors import actor_name
from rayjoule.metering.ray_cluster import RayMetering
from rayjoule.runs.assemble import Measured, assemble


def test_a_host_lost_mid_run_keeps_the_energy_measured_until_then(ray_session):
    import workloads
    from rayjoule.cluster.connect import NAMESPACE

    metering = RayMetering("tdp", "host", workload="lost-host-test")
    idle = metering.idle(0)
    [host] = metering.hosts
    metering.start()
    time.sleep(1.2)
    metering.peek()  # what the node watcher does every few seconds
    ray_session.kill(ray_session.get_actor(actor_name(host), namespace=NAMESPACE))
    time.sleep(0.5)
    windows = metering.stop()
    metering.close()
    window = windows[host]
    assert window.complete is False and window.total_j > 0
    pipe = workloads.as_pipeline(workloads.get("sleep"))
    job = plan_job(pipe, 0, 0, {}, {"map": 1}, {"map": 1.0})
    config = RunConfig(workload="sleep", size=0, framework="ray", meter="tdp")
    m = Measured(run_id="lost", config=config, started_at=0.0, wall_s=2.0, windows=windows)
    result = assemble(m, idle, metering.label, metering.host_info, job)
    assert result.complete is False and result.hosts[0].complete is False
    assert result.energy.total_j == pytest.approx(window.total_j)
    console = Console(record=True, width=200)
    print_run(result, console)
    assert "was lost mid-run" in console.export_text()


def test_remote_lithops_calls_meter_themselves(tmp_path):
    pytest.importorskip("lithops", reason="metering inside remote calls needs Lithops")
    lithops_cfg = tmp_path / "lithops.yaml"
    lithops_cfg.write_text(
        "lithops:\n  backend: localhost\n  storage: localhost\n"
        f"localhost:\n  runtime: {sys.executable}\n  worker_processes: 2\n"
        "rayjoule:\n  meter_in_calls: true   # as if the backend were remote\n")
    r = run(RunConfig(workload="pi", size=2_000_000, tasks=3, framework="lithops",
                      lithops_config=str(lithops_cfg), meter="tdp", idle_seconds=0),
            db=tmp_path / "r.sqlite")
    assert r.meter.name.startswith("call:") and r.meter.kind == "modelled"
    assert all(t.call_energy and t.call_energy["energy_j"] > 0 for t in r.tasks)
    assert "model" in r.tasks[0].call_energy["basis"]
    calls_j = math.fsum(t.call_energy["energy_j"] for t in r.tasks)
    assert r.energy.total_j == pytest.approx(calls_j)
    assert math.fsum(t.energy_j for t in r.tasks) + r.energy.overhead_j == \
        pytest.approx(r.energy.total_j, rel=1e-9)
    assert all(t.framework_stats for t in r.tasks)  # Lithops' own per-call timings kept
    assert any("worker_cold_start" in t.framework_stats for t in r.tasks)


def test_every_run_stores_a_description_of_its_hosts(tmp_path):
    from rayjoule.runs.store import Store

    db = tmp_path / "r.sqlite"
    r = run(RunConfig(workload="sleep", size=0, meter="tdp", idle_seconds=0, tdp_watts=90.0,
                      cpu_threads=4), db=db)
    with Store(db) as store:
        stored = store.get(r.run_id)
    info = stored.hosts[0].info
    machine = info["machine"]
    assert {"cpu_model", "vcpus", "cores", "smt", "memory_bytes", "kernel"} <= set(machine)
    basis = info["meters"]["tdp"]
    assert basis["basis"] == "override"  # the user's --tdp-watts, recorded as the basis
    assert stored.config["tdp_watts"] == 90.0
