"""Energy in Ray's metrics export: metric logic with fakes, then scraped from real heads.

The end-to-end tests run ``python -m rayjoule.run`` as a subprocess against a
private head (its own temp dir and ports, killed by pid afterwards, see
``tests_support.private_ray``), never ``ray stop``, so the shared test session
and any other Ray on the machine are untouched.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rayjoule.core.result import MeterLabel
from rayjoule.metering import metrics as rm
from rayjoule.metering.host_meter import Snapshot, WindowEnergy
from tests_support.fake_metrics import fake_factory
from tests_support.private_ray import (
    isolated_env,
    private_dir,
    private_head,
    series,
    wait_for_metric,
)

LABEL = MeterLabel(name="rapl", kind="measured")
ENERGY_TOTAL = rm.prometheus_name(rm.ENERGY)
HOST_TOTAL = rm.prometheus_name(rm.HOST_ENERGY)
REPORT_FAST = {"RAY_metrics_report_interval_ms": "1000"}  # Ray's default is 10 s


def window(by_domain, total):
    return WindowEnergy(host="h:1", meter=LABEL, t0=0.0, t1=2.0, total_j=total,
                        by_domain=by_domain)


# -- metric logic, no Ray ------------------------------------------------------------------

def test_names_follow_ray_rules_and_prometheus_sees_ray_rayjoule():
    for name in (rm.ENERGY, rm.HOST_ENERGY, rm.POWER, rm.TASK_ENERGY):
        assert rm.check_metric_name(name) == name and name.startswith("rayjoule_")
    assert ENERGY_TOTAL == "ray_rayjoule_energy_joules_total"
    assert rm.prometheus_name(rm.POWER, "gauge") == "ray_rayjoule_power_watts"
    with pytest.raises(ValueError, match="invalid Ray metric name"):
        rm.check_metric_name("rayjoule-energy")
    assert set(rm.ENERGY_TAGS) == {"workload", "framework", "host", "meter", "kind", "domain"}
    assert list(rm.TASK_ENERGY_BOUNDARIES_J) == sorted(rm.TASK_ENERGY_BOUNDARIES_J)


def test_a_window_increments_per_domain_and_host_total_skipping_zero():
    store: dict = {}
    m = rm.EnergyMetrics(fake_factory(store))
    m.record_window("pi", "ray", window({"package-0": 10.0, "core-0": 6.0, "dram-0": 0.0}, 10.0))
    energy = {tags["domain"]: v for _, v, tags in store[rm.ENERGY]}
    assert energy == {"package-0": 10.0, "core-0": 6.0}  # a zero increment is no sample
    [(op, total, tags)] = store[rm.HOST_ENERGY]
    assert (op, total) == ("inc", 10.0)  # the host total, not package + core
    assert tags == {"workload": "pi", "framework": "ray", "host": "h:1", "meter": "rapl",
                    "kind": "measured"}


def test_task_energies_and_power_are_recorded_with_their_tags():
    store: dict = {}
    m = rm.EnergyMetrics(fake_factory(store))
    assert m.record_tasks("pi", "ray", "h:1", LABEL, [0.5, 2.0]) == 2
    assert [v for _, v, _ in store[rm.TASK_ENERGY]] == [0.5, 2.0]
    m.set_power("h:1", LABEL, {"package-0": 42.0})
    assert store[rm.POWER] == [("set", 42.0, {"host": "h:1", "meter": "rapl",
                                              "kind": "measured", "domain": "package-0"})]


def test_power_publisher_sets_watts_from_consecutive_readings():
    class FakeHostMeter:
        host, label = "h:1", LABEL

        def __init__(self):
            self.snaps = iter([Snapshot(0.0, {"package-0": 0.0}, 0.0),
                               Snapshot(2.0, {"package-0": 50.0}, 50.0)])

        def read(self):
            return next(self.snaps)

    store: dict = {}
    hm = FakeHostMeter()
    pub = rm.PowerPublisher(rm.EnergyMetrics(fake_factory(store)), lambda: [hm])
    pub.publish_once()
    assert store[rm.POWER] == []  # one reading is no rate yet
    pub.publish_once()
    assert [v for _, v, _ in store[rm.POWER]] == [25.0]


def test_the_grafana_dashboard_queries_only_metrics_rayjoule_exports():
    dashboard = json.loads((Path(__file__).parents[2] / "dashboards" / "rayjoule.json").read_text())
    exported = {rm.prometheus_name(rm.ENERGY), rm.prometheus_name(rm.HOST_ENERGY),
                rm.prometheus_name(rm.POWER, "gauge"),
                *(rm.prometheus_name(rm.TASK_ENERGY, "histogram") + suffix
                  for suffix in ("_bucket", "_count", "_sum"))}
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    queries += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    used = {name for q in queries for name in re.findall(r"\bray_[a-z_]+", q)}
    assert queries and used and used <= exported, used - exported


# -- scraped from real heads ---------------------------------------------------------------

def _rayjoule_run(tmp_path: Path, env: dict, *args: str) -> dict:
    out = tmp_path / f"run{len(list(tmp_path.glob('run*.json')))}.json"
    cmd = [sys.executable, "-m", "rayjoule.run", "--workload", "pi", "--size", "1000000",
           "--framework", "ray", "--tasks", "2", "--meter", "tdp", "--idle-seconds", "0",
           "--db", str(tmp_path / "r.sqlite"), "--json", str(out), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"result": json.loads(out.read_text()), "stdout": proc.stdout}


def _pi_counter(text: str) -> float:
    return sum(v for tags, v in series(text, ENERGY_TOTAL) if tags.get("workload") == "pi")


def _host_series(text: str) -> list[float]:
    return [v for tags, v in series(text, HOST_TOTAL) if tags.get("workload") == "pi"]


def test_run_against_a_ray_start_head_exports_the_energy_counter(tmp_path):
    with private_head(num_cpus=2) as head:
        run = _rayjoule_run(tmp_path, head.env, "--address", head.address)
        value = wait_for_metric(head.metrics_url, _pi_counter, timeout_s=30)
        assert value > 0, f"no {ENERGY_TOTAL}{{workload=\"pi\"}} on {head.metrics_url}"
        text = wait_for_metric(head.metrics_url, lambda t: t if series(
            t, "ray_rayjoule_task_energy_joules_count") else "", timeout_s=15)
        [(tags, n)] = series(text, "ray_rayjoule_task_energy_joules_count")
        assert n == 2 and tags["workload"] == "pi" and tags["framework"] == "ray"
        assert _host_series(text) == [pytest.approx(run["result"]["energy"]["total_j"])]


def test_keep_alive_keeps_the_head_and_counters_add_up_across_runs(tmp_path, ray_session):
    with private_dir() as temp_dir:
        env = isolated_env(temp_dir, **REPORT_FAST)  # RAY_TMPDIR: the head stays private
        first = _rayjoule_run(tmp_path, env, "--keep-alive")
        urls = re.findall(r"metrics:\s+(http://\S+/metrics)", first["stdout"])
        assert urls, first["stdout"]
        assert "dashboard: http://127.0.0.1:" in first["stdout"]
        assert "ray stop" in first["stdout"]
        url = urls[0]
        assert wait_for_metric(url, _pi_counter, timeout_s=30) > 0

        second = _rayjoule_run(tmp_path, env)  # no --keep-alive: finds and reuses the head
        expected = sum(r["result"]["energy"]["total_j"] for r in (first, second))
        text = wait_for_metric(
            url, lambda t: t if sum(_host_series(t)) >= expected * (1 - 1e-9) else "",
            timeout_s=30)
        # one meter actor (one series) whose counter holds both runs
        assert _host_series(text) == [pytest.approx(expected)]
    assert ray_session.get(ray_session.put(1)) == 1  # the shared session never noticed
