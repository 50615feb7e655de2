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
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from rayjoule.core.result import MeterLabel
from rayjoule.metering import metrics as rm
from rayjoule.metering.host_meter import Snapshot, WindowEnergy
from rayjoule.metering.power_gauge import PowerPublisher
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
TASKS_TOTAL = rm.prometheus_name(rm.TASKS)
BUCKET_TOTAL = rm.prometheus_name(rm.TASK_ENERGY_BUCKET)
REPORT_FAST = {"RAY_metrics_report_interval_ms": "1000"}  # Ray's default is 10 s
RUN = {"workload": "pi", "framework": "ray", "host": "h:1", "meter": "rapl", "kind": "measured"}


def window(by_domain, total):
    return WindowEnergy(host="h:1", meter=LABEL, t0=0.0, t1=2.0, total_j=total,
                        by_domain=by_domain)


def zeroing_factory(store):
    """The shared fake, plus the ``_record`` that EnergyMetrics makes a series exist at 0 with."""
    base = fake_factory(store)

    class Counter(base.Counter):
        def _record(self, value, tags):
            self._rec("zero", value, tags)

    return SimpleNamespace(Counter=Counter, Gauge=base.Gauge, Histogram=base.Histogram)


class Clock:
    """A settable clock and a deferral queue, so the settle time is tested without sleeping."""

    def __init__(self):
        self.now = 0.0
        self.deferred: list[tuple[float, object]] = []

    def __call__(self):
        return self.now

    def defer(self, delay_s, fn):
        self.deferred.append((delay_s, fn))

    def run_deferred(self):
        pending, self.deferred = self.deferred, []
        for _, fn in pending:
            fn()


def metrics(store, settle_s=0.0, clock=None):
    clock = clock or Clock()
    return rm.EnergyMetrics(zeroing_factory(store), settle_s=settle_s, clock=clock,
                            defer=clock.defer)


def ops(store, name, op):
    return [(v, tags) for o, v, tags in store[name] if o == op]


# -- metric logic, no Ray ------------------------------------------------------------------

def test_names_follow_ray_rules_and_prometheus_sees_ray_rayjoule():
    for name in (rm.ENERGY, rm.HOST_ENERGY, rm.POWER, rm.TASKS, rm.TASK_ENERGY_BUCKET):
        assert rm.check_metric_name(name) == name and name.startswith("rayjoule_")
    assert ENERGY_TOTAL == "ray_rayjoule_energy_joules_total"
    assert BUCKET_TOTAL == "ray_rayjoule_task_energy_joules_bucket_total"
    assert rm.prometheus_name(rm.POWER, "gauge") == "ray_rayjoule_power_watts"
    with pytest.raises(ValueError, match="invalid Ray metric name"):
        rm.check_metric_name("rayjoule-energy")
    assert set(rm.ENERGY_TAGS) == {"workload", "framework", "host", "meter", "kind", "domain"}
    assert list(rm.TASK_ENERGY_BOUNDARIES_J) == sorted(rm.TASK_ENERGY_BOUNDARIES_J)
    assert rm.BUCKET_LABELS[0] == "0.01" and rm.BUCKET_LABELS[-1] == "+Inf"
    assert len(rm.BUCKET_LABELS) == len(rm.TASK_ENERGY_BOUNDARIES_J) + 1


def test_opening_a_window_makes_every_series_of_the_run_exist_at_zero_once():
    store: dict = {}
    m = metrics(store)
    new = m.open_window("pi", "ray", "h:1", LABEL, ["package-0", "core-0"])
    assert new == 2 + 1 + 1 + len(rm.BUCKET_LABELS)
    assert {t["domain"] for _, t in ops(store, rm.ENERGY, "zero")} == {"package-0", "core-0"}
    assert ops(store, rm.HOST_ENERGY, "zero") == [(0.0, RUN)]
    assert ops(store, rm.TASKS, "zero") == [(0.0, RUN)]
    assert [t["le"] for _, t in ops(store, rm.TASK_ENERGY_BUCKET, "zero")] == \
        list(rm.BUCKET_LABELS)
    assert all(v == 0.0 for name in store for v, _ in ops(store, name, "zero"))
    # the next run's window finds them all: nothing recorded again
    assert m.open_window("pi", "ray", "h:1", LABEL, ["package-0", "core-0"]) == 0
    # another workload is a series of its own
    assert m.open_window("primes", "ray", "h:1", LABEL, ["package-0"]) == 1 + 1 + 1 + len(
        rm.BUCKET_LABELS)


def test_a_window_increments_per_domain_and_host_total_skipping_zero():
    store: dict = {}
    m = metrics(store)
    m.open_window("pi", "ray", "h:1", LABEL, ["package-0", "core-0", "dram-0"])
    m.record_window("pi", "ray", window({"package-0": 10.0, "core-0": 6.0, "dram-0": 0.0}, 10.0))
    energy = {tags["domain"]: v for v, tags in ops(store, rm.ENERGY, "inc")}
    assert energy == {"package-0": 10.0, "core-0": 6.0}  # dram-0 stays at its 0
    assert ops(store, rm.HOST_ENERGY, "inc") == [(10.0, RUN)]  # the host total, not the sum


def test_a_window_sets_the_run_power_gauge_to_its_mean_watts_at_once():
    store: dict = {}
    m = metrics(store, settle_s=30.0)  # the counters wait to settle; a gauge need not
    m.record_window("pi", "ray", window({"package-0": 10.0}, 10.0))  # 10 J over 2 s
    assert ops(store, rm.RUN_POWER, "set") == [(5.0, RUN)]
    m.record_window("pi", "ray", window({"package-0": 3.0}, 3.0))
    assert ops(store, rm.RUN_POWER, "set")[-1] == (1.5, RUN)  # the latest run's, not a sum
    m.refresh_run_power()  # between runs it is set again, so Ray keeps exporting it
    assert ops(store, rm.RUN_POWER, "set")[-1] == (1.5, RUN)
    assert len(ops(store, rm.RUN_POWER, "set")) == 3


def test_first_joules_wait_until_the_zero_has_had_time_to_be_scraped():
    store: dict = {}
    clock = Clock()
    m = metrics(store, settle_s=5.0, clock=clock)
    m.open_window("pi", "ray", "h:1", LABEL, ["package-0"])
    clock.now = 2.0  # a 2 s run: its 0 may not have been scraped yet
    m.record_window("pi", "ray", window({"package-0": 4.0}, 4.0))
    assert ops(store, rm.HOST_ENERGY, "inc") == []
    [(delay, _)] = clock.deferred
    assert delay == pytest.approx(3.0)  # 5 s after the 0, not 5 s after the stop
    clock.run_deferred()
    assert ops(store, rm.HOST_ENERGY, "inc") == [(4.0, RUN)]
    assert ops(store, rm.ENERGY, "inc") == [(4.0, {**RUN, "domain": "package-0"})]

    clock.now = 9.0  # a later run: its series exist and have settled, nothing waits
    m.open_window("pi", "ray", "h:1", LABEL, ["package-0"])
    m.record_window("pi", "ray", window({"package-0": 1.0}, 1.0))
    assert clock.deferred == [] and len(ops(store, rm.HOST_ENERGY, "inc")) == 2


def test_a_series_no_window_opened_is_zeroed_when_first_recorded_and_waits_the_full_settle():
    store: dict = {}
    clock = Clock()
    m = metrics(store, settle_s=5.0, clock=clock)
    m.record_window("pi", "native", window({"package-0": 4.0}, 4.0))
    assert ops(store, rm.HOST_ENERGY, "zero") == [(0.0, {**RUN, "framework": "native"})]
    assert [d for d, _ in clock.deferred] == [5.0]
    assert ops(store, rm.HOST_ENERGY, "inc") == []


def test_task_energies_fill_cumulative_buckets_and_the_task_count():
    store: dict = {}
    m = metrics(store)
    assert m.record_tasks("pi", "ray", "h:1", LABEL, [0.005, 0.5, 2.0]) == 3
    assert ops(store, rm.TASKS, "inc") == [(3.0, RUN)]
    buckets = {t["le"]: v for v, t in ops(store, rm.TASK_ENERGY_BUCKET, "inc")}
    assert buckets["0.01"] == 1 and buckets["0.3"] == 1 and buckets["1"] == 2
    assert buckets["3"] == 3 and buckets["+Inf"] == 3
    assert list(buckets.values()) == sorted(buckets.values())  # cumulative
    zeroed = [t["le"] for _, t in ops(store, rm.TASK_ENERGY_BUCKET, "zero")]
    assert zeroed == list(rm.BUCKET_LABELS)  # every bucket exists, the empty ones at 0


def test_negative_energy_is_logged_not_exported(caplog):
    store: dict = {}
    m = metrics(store)
    m.record_window("pi", "ray", window({"package-0": -3.0}, -3.0))
    assert ops(store, rm.HOST_ENERGY, "inc") == [] and ops(store, rm.ENERGY, "inc") == []
    assert "negative value -3" in caplog.text


def test_a_failing_increment_is_logged_and_the_others_still_land(caplog):
    store: dict = {}
    m = metrics(store)

    def broken(value, tags):
        raise RuntimeError("agent gone")

    m.energy.inc = broken
    m.record_window("pi", "ray", window({"package-0": 2.0}, 2.0))
    assert ops(store, rm.HOST_ENERGY, "inc") == [(2.0, RUN)]
    assert "exporting 2 to rayjoule_energy_joules" in caplog.text and "agent gone" in caplog.text


def test_settle_time_is_report_plus_scrape_interval_plus_a_margin(caplog):
    assert rm.settle_seconds(1.0, {rm.SCRAPE_INTERVAL_ENV: "1"}) == 3.0
    assert rm.settle_seconds(10.0, {}) == 10.0 + rm.DEFAULT_SCRAPE_INTERVAL_S + 1.0
    assert rm.settle_seconds(1.0, {rm.SCRAPE_INTERVAL_ENV: "soon"}) == 12.0
    assert "RAYJOULE_SCRAPE_INTERVAL_S='soon' is not a number" in caplog.text


def test_power_is_recorded_with_its_tags():
    store: dict = {}
    m = metrics(store)
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
    pub = PowerPublisher(metrics(store), lambda: [hm])
    pub.publish_once()
    assert store[rm.POWER] == []  # one reading is no rate yet
    pub.publish_once()
    assert [v for _, v, _ in store[rm.POWER]] == [25.0]


def _dashboard():
    return json.loads((Path(__file__).parents[3] / "dashboards" / "rayjoule.json").read_text())


def test_the_grafana_dashboard_queries_only_metrics_rayjoule_exports():
    dashboard = _dashboard()
    exported = {ENERGY_TOTAL, HOST_TOTAL, TASKS_TOTAL, BUCKET_TOTAL,
                rm.prometheus_name(rm.POWER, "gauge"), rm.prometheus_name(rm.RUN_POWER, "gauge")}
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    queries += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    used = {name for q in queries for name in re.findall(r"\bray_[a-z_]+", q)}
    assert queries and used and used <= exported, used - exported


def test_every_dashboard_panel_keeps_kind_apart_and_states_its_unit():
    for panel in _dashboard()["panels"]:
        for target in panel.get("targets", []):
            groupings = re.findall(r"by \(([^)]*)\)", target["expr"])
            assert groupings, target["expr"]
            for group in groupings:
                assert "kind" in [g.strip() for g in group.split(",")], (panel["title"], group)
            legend = target["legendFormat"]
            assert "{{kind}}" in legend or target.get("format") in ("table", "heatmap"), \
                panel["title"]
        if panel.get("targets"):
            unit = panel["fieldConfig"]["defaults"].get("unit") or \
                panel.get("options", {}).get("yAxis", {}).get("unit")
            assert unit in ("joule", "watt", "short"), panel["title"]
    heatmap = next(p for p in _dashboard()["panels"] if p["type"] == "heatmap")
    assert heatmap["repeat"] == "kind"  # one heatmap per kind: never mixed


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


def test_run_against_a_ray_start_head_exports_the_energy_counter(tmp_path, monkeypatch):
    # the head's meter actor reads it: Ray exports every 1 s here, so a series waits ~3 s at 0
    monkeypatch.setenv(rm.SCRAPE_INTERVAL_ENV, "1")
    with private_head(num_cpus=2) as head:
        run = _rayjoule_run(tmp_path, head.env, "--address", head.address)
        value = wait_for_metric(head.metrics_url, _pi_counter, timeout_s=30)
        assert value > 0, f"no {ENERGY_TOTAL}{{workload=\"pi\"}} on {head.metrics_url}"
        text = wait_for_metric(head.metrics_url, lambda t: t if series(
            t, TASKS_TOTAL) and _host_series(t) else "", timeout_s=15)
        [(tags, n)] = series(text, TASKS_TOTAL)
        assert n == 2 and tags["workload"] == "pi" and tags["framework"] == "ray"
        assert _host_series(text) == [pytest.approx(run["result"]["energy"]["total_j"])]
        buckets = {tags["le"]: v for tags, v in series(text, BUCKET_TOTAL)}
        assert set(buckets) == set(rm.BUCKET_LABELS)  # the empty ones exported at 0
        assert buckets["+Inf"] == 2 and min(buckets.values()) >= 0


def test_keep_alive_keeps_the_head_and_counters_add_up_across_runs(tmp_path, ray_session,
                                                                 monkeypatch):
    monkeypatch.setenv(rm.SCRAPE_INTERVAL_ENV, "1")
    with private_dir() as temp_dir:
        env = isolated_env(temp_dir, **REPORT_FAST)  # RAY_TMPDIR: the head stays private
        first = _rayjoule_run(tmp_path, env, "--keep-alive")
        urls = re.findall(r"metrics:\s+(http://\S+/metrics)", first["stdout"])
        assert urls, first["stdout"]
        assert "dashboard: http://127.0.0.1:" in first["stdout"]
        [session] = re.findall(r"stop it:\s+\S+ -m rayjoule.cluster.keepalive --stop (\S+)",
                               first["stdout"])
        url = urls[0]
        assert wait_for_metric(url, _pi_counter, timeout_s=30) > 0

        second = _rayjoule_run(tmp_path, env)  # no --keep-alive: finds and reuses the head
        expected = sum(r["result"]["energy"]["total_j"] for r in (first, second))
        text = wait_for_metric(
            url, lambda t: t if sum(_host_series(t)) >= expected * (1 - 1e-9) else "",
            timeout_s=30)
        # one meter actor (one series) whose counter holds both runs
        assert _host_series(text) == [pytest.approx(expected)]
        # the printed command stops that head, and only that head
        subprocess.run([sys.executable, "-m", "rayjoule.cluster.keepalive", "--stop", session],
                       check=True, timeout=60)
        assert wait_for_unreachable(url, timeout_s=30)
    assert ray_session.get(ray_session.put(1)) == 1  # the shared session never noticed


def wait_for_unreachable(url: str, timeout_s: float) -> bool:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
        except (urllib.error.URLError, OSError):
            return True
        time.sleep(0.5)
    return False
