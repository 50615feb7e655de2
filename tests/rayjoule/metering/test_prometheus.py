"""The Grafana dashboard against a real Prometheus scraping a real Ray head, after ONE run.

Why this test exists: a counter series that first appears already holding a run's
joules has no increase in Prometheus' eyes, so a workload run once would read 0 J
on every ``increase()``/``rate()`` panel. The meter actors make each series exist
at 0 first (:mod:`rayjoule.metering.metrics`); this test proves it end to end by
evaluating every query of ``dashboards/rayjoule.json`` (Grafana's variables
replaced by concrete values) through Prometheus' HTTP API and checking that each
returns the run's own figures.

Prometheus (the Debian package's ``prometheus`` binary) is started by a fixture on
127.0.0.1 with a temp data dir and a 1 s scrape interval, and stopped afterwards;
the Ray head is a private one (``tests_support.private_ray``).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rayjoule.metering import metrics as rm
from tests_support.private_ray import free_port, private_head

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="no `prometheus` binary on PATH (Debian: apt-get install prometheus)")

DASHBOARD = Path(__file__).parents[3] / "dashboards" / "rayjoule.json"
SCRAPE_S = 1
HOST_TOTAL = rm.prometheus_name(rm.HOST_ENERGY)
TASKS_TOTAL = rm.prometheus_name(rm.TASKS)
#: panels Grafana evaluates once over the whole time range; the others are drawn over time
INSTANT_PANELS = ("stat", "bargauge", "table")


@dataclass(frozen=True)
class Prometheus:
    url: str

    def api(self, path: str, **params: str | float) -> list | dict:
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
                body = json.load(r)
        except urllib.error.HTTPError as exc:  # a bad query: show Prometheus' own reason
            raise AssertionError(f"{path} {params}: {exc.read().decode()[:500]}") from None
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str, at: float) -> list[dict]:
        return self.api("query", query=expr, time=at)["result"]

    def query_range(self, expr: str, start: float, end: float) -> list[dict]:
        return self.api("query_range", query=expr, start=start, end=end,
                        step=SCRAPE_S)["result"]

    def wait_for(self, expr: str, ok: Callable[[list[dict]], bool],
                 timeout_s: float = 60.0) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(expr, time.time())
            if ok(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr} never matched within {timeout_s} s: {result}")
            time.sleep(0.5)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[str], Prometheus]]:
    """Start Prometheus scraping one target (``host:port``) every second; stop it after."""
    procs: list[subprocess.Popen] = []

    def start(target: str) -> Prometheus:
        config = tmp_path / "prometheus.yml"
        config.write_text(f"global:\n  scrape_interval: {SCRAPE_S}s\n"
                          f"  evaluation_interval: {SCRAPE_S}s\n"
                          "scrape_configs:\n  - job_name: rayjoule\n"
                          f"    static_configs:\n      - targets: ['{target}']\n")
        port = free_port()
        log = (tmp_path / "prometheus.log").open("w")
        procs.append(subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT))
        log.close()
        server = Prometheus(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2):
                    return server
            except (urllib.error.URLError, OSError) as exc:
                if procs[-1].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("prometheus did not start:\n" + (
                        tmp_path / "prometheus.log").read_text()[-2000:]) from exc
                time.sleep(0.2)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _run_once(tmp_path: Path, env: dict, address: str) -> dict:
    out = tmp_path / "run.json"
    cmd = [sys.executable, "-m", "rayjoule.run", "--workload", "pi", "--size", "1000000",
           "--framework", "ray", "--tasks", "2", "--meter", "tdp", "--idle-seconds", "0",
           "--address", address, "--db", str(tmp_path / "r.sqlite"), "--json", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def _grafana(expr: str, range_s: int) -> str:
    """Replace the dashboard's variables as Grafana would for this test's one run."""
    rate_interval = f"{4 * SCRAPE_S}s"  # Grafana: max(4 × scrape interval, interval + scrape)
    for var, value in (("$__rate_interval", rate_interval), ("$__range", f"{range_s}s"),
                       ("$__interval", f"{SCRAPE_S}s"), ("$SessionName", ".*"),
                       ("$host", ".*"), ("$kind", ".*"), ("$workload", "pi")):
        expr = expr.replace(var, value)
    assert "$" not in expr, expr
    return expr


def _values(series: dict) -> list[float]:
    points = series["values"] if "values" in series else [series["value"]]
    return [float(v) for _, v in points]


def _name(labels: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def test_every_dashboard_query_shows_the_first_run(tmp_path, prometheus, monkeypatch):
    monkeypatch.setenv(rm.SCRAPE_INTERVAL_ENV, str(SCRAPE_S))  # read by the head's meter actor
    dashboard = json.loads(DASHBOARD.read_text())
    with private_head(num_cpus=2) as head:
        prom = prometheus(f"127.0.0.1:{head.metrics_port}")
        prom.wait_for('up{job="rayjoule"}', lambda r: bool(r) and r[0]["value"][1] == "1")
        t0 = time.time()
        run = _run_once(tmp_path, head.env, head.address)
        total_j = run["energy"]["total_j"]
        assert total_j > 0 and run["status"] == "ok"
        # the joules land once their 0 has been scraped; wait until Prometheus has them
        selector = '{workload="pi"}'
        prom.wait_for(f"sum({HOST_TOTAL}{selector})",
                      lambda r: bool(r) and float(r[0]["value"][1]) >= total_j * (1 - 1e-9))
        prom.wait_for(f"sum({TASKS_TOTAL}{selector})",
                      lambda r: bool(r) and float(r[0]["value"][1]) == 2)
        time.sleep(2 * SCRAPE_S)
        # evaluate at the newest sample, so nothing is extrapolated past it
        [newest] = prom.query(f"max(timestamp({HOST_TOTAL}{selector}))", time.time())
        at = float(newest["value"][1])
        range_s = math.ceil(at - t0) + 5

        seen: dict[str, list[float]] = {}
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = _grafana(target["expr"], range_s)
                result = (prom.query(expr, at) if panel["type"] in INSTANT_PANELS
                          else prom.query_range(expr, t0, at))
                assert result, f"{panel['title']}: no series for {expr}"
                peaks = {_name(s["metric"]): max((v for v in _values(s) if math.isfinite(v)),
                                                 default=0.0) for s in result}
                if "le" in result[0]["metric"]:  # buckets: those below the tasks stay at 0
                    assert peaks[_name({**result[0]["metric"], "le": "+Inf"})] > 0, peaks
                else:
                    assert all(p > 0 for p in peaks.values()), f"{panel['title']}: {peaks}"
                seen[f"{panel['title']} [{target['refId']}]"] = list(peaks.values())
                print(f"{panel['title']} [{target['refId']}]: {peaks}")

        # and they are this run's figures, not just positive ones
        assert seen["Energy per workload, J (time range) [A]"] == [pytest.approx(total_j)]
        assert seen["Tasks metered (time range) [A]"] == [2.0]
        assert seen["Cumulative energy per host and meter, J [A]"] == [pytest.approx(total_j)]
        assert sorted(seen["Energy by meter domain, J (time range) [A]"]) == pytest.approx(
            sorted(v for v in run["energy"]["by_domain"].values() if v > 0))
        biggest_task = max(t["energy_j"] for t in run["tasks"])
        for ref in "ABC":  # a quantile lies inside the bucket that holds the biggest task
            [q] = seen[f"Per-task energy quantiles, J [{ref}]"]
            upper = next(b for b in (*rm.TASK_ENERGY_BOUNDARIES_J, math.inf) if biggest_task <= b)
            assert 0 < q <= upper

        # the template variables (Grafana's label_values) list this run's labels
        for var in dashboard["templating"]["list"]:
            if "definition" not in var:
                continue
            metric, label = var["definition"][len("label_values("):-1].rsplit(", ", 1)
            series = prom.api("series", **{"match[]": _grafana(metric, range_s),
                                           "start": t0, "end": at})
            values = {s[label] for s in series if label in s}
            expected = {"workload": {"pi"}, "kind": {run["meter"]["kind"]},
                        "host": {h["host"] for h in run["hosts"]}}.get(label)
            assert values and (expected is None or expected <= values), (var["name"], values)
            print(f"variable {var['name']}: {sorted(values)}")
