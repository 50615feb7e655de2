"""The Grafana dashboard against a real Prometheus scraping a real Ray head, after a first
and after a second run.

Why this test exists: a counter series that first appears already holding a run's
joules has no increase in Prometheus' eyes, so a workload run once would read 0 J;
``increase()`` extrapolates past the samples and reads a young series 10-36 % high;
``rate()`` of a counter that steps once per run reads a fraction of the run's watts.
The meter actors make each series exist at 0 first (:mod:`rayjoule.metering.metrics`)
and the panels take differences of samples and a per-run power gauge; this test
evaluates every query of ``dashboards/rayjoule.json`` (Grafana's variables replaced
by concrete values, the time range starting just before each run) through
Prometheus' HTTP API and checks each returns that run's own figures: joules and
task counts within 1 %, the power within 10 % of the run's mean watts.

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


def _run_once(tmp_path: Path, env: dict, address: str, n: int) -> dict:
    out = tmp_path / f"run{n}.json"
    cmd = [sys.executable, "-m", "rayjoule.run", "--workload", "pi", "--size", "1000000",
           "--framework", "ray", "--tasks", "2", "--meter", "tdp", "--idle-seconds", "0",
           "--address", address, "--db", str(tmp_path / "r.sqlite"), "--json", str(out)]
    if n > 1:  # a second run with other figures (more tasks, more joules)
        cmd[cmd.index("--tasks") + 1] = "4"
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def _grafana(expr: str, range_s: int, rate_interval: str = f"{4 * SCRAPE_S}s") -> str:
    """Replace the dashboard's variables as Grafana would (its ``$__rate_interval``:
    max(4 × scrape interval, interval + scrape), or as wide as the range when zoomed out)."""
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


def _panels(prom: Prometheus, dashboard: dict, t0: float, at: float) -> dict[str, dict]:
    """Every panel target evaluated as Grafana would over [t0, at]: label set → its values."""
    range_s = math.ceil(at - t0)
    seen: dict[str, dict] = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = _grafana(target["expr"], range_s)
            result = (prom.query(expr, at) if panel["type"] in INSTANT_PANELS
                      else prom.query_range(expr, t0, at))
            assert result, f"{panel['title']}: no series for {expr}"
            seen[f"{panel['title']} [{target['refId']}]"] = {
                _name(s["metric"]): [v for v in _values(s) if math.isfinite(v)] for s in result}
            if "$__rate_interval" in target["expr"]:  # and zoomed out to one point: the run
                whole = prom.query(_grafana(target["expr"], range_s, f"{range_s}s"), at)
                seen[f"{panel['title']} [{target['refId']}] whole range"] = {
                    _name(s["metric"]): _values(s) for s in whole}
    return seen


def _settled(prom: Prometheus, joules: float, tasks: int) -> float:
    """Wait until Prometheus holds these cumulative joules and tasks; the newest sample's time."""
    selector = '{workload="pi"}'
    prom.wait_for(f"sum({HOST_TOTAL}{selector})",
                  lambda r: bool(r) and float(r[0]["value"][1]) >= joules * (1 - 1e-9))
    prom.wait_for(f"sum({TASKS_TOTAL}{selector})",
                  lambda r: bool(r) and float(r[0]["value"][1]) == tasks)
    prom.wait_for(f"sum({rm.prometheus_name(rm.RUN_POWER, 'gauge')}{selector})",
                  lambda r: bool(r))
    time.sleep(2 * SCRAPE_S)
    # evaluate at the newest sample, so nothing is extrapolated past it
    [newest] = prom.query(f"max(timestamp({HOST_TOTAL}{selector}))", time.time())
    return float(newest["value"][1])


def _check_run(seen: dict[str, dict], run: dict, n_tasks: int) -> None:
    """The panels show this run's figures, not just positive ones."""
    def one(title: str) -> list[float]:
        [values] = seen[title].values()
        return values

    total_j = run["energy"]["total_j"]
    assert one("Energy per workload, J (time range) [A]")[-1] == pytest.approx(total_j, rel=0.01)
    assert one("Tasks metered (time range) [A]")[-1] == pytest.approx(n_tasks, rel=0.01)
    # the gauge is the window's mean: its joules over the seconds the meter window covered
    # (at least the run's wall time: it opens before the work and closes after it)
    [host] = run["hosts"]
    assert host["window_s"] >= run["wall_s"]
    mean_w = host["energy"]["total_j"] / host["window_s"]
    assert one("Mean power of the latest run, W [A]")[-1] == pytest.approx(mean_w, rel=0.01)
    domains = sorted(v[-1] for v in seen["Energy by meter domain, J (time range) [A]"].values())
    assert domains == pytest.approx(
        sorted(v for v in run["energy"]["by_domain"].values() if v > 0), rel=0.01)
    # the heatmap counts every task once: its cells of the +Inf bucket add up to the tasks
    heat = seen["Per-task energy distribution, tasks per bucket ($kind) [A]"]
    [inf] = [v for k, v in heat.items() if "le=+Inf" in k]
    assert sum(inf) == pytest.approx(n_tasks, rel=0.01)
    biggest_task = max(t["energy_j"] for t in run["tasks"])
    upper = next(b for b in (*rm.TASK_ENERGY_BOUNDARIES_J, math.inf) if biggest_task <= b)
    for ref in "ABC":  # a quantile lies inside the bucket that holds the biggest task
        assert 0 < one(f"Per-task energy quantiles, J [{ref}] whole range")[-1] <= upper
    print({k: {s: v[-1] for s, v in series.items()} for k, series in seen.items()})


def test_every_dashboard_query_shows_the_first_and_the_second_run(tmp_path, prometheus,
                                                                   monkeypatch):
    monkeypatch.setenv(rm.SCRAPE_INTERVAL_ENV, str(SCRAPE_S))  # read by the head's meter actor
    dashboard = json.loads(DASHBOARD.read_text())
    with private_head(num_cpus=2) as head:
        prom = prometheus(f"127.0.0.1:{head.metrics_port}")
        prom.wait_for('up{job="rayjoule"}', lambda r: bool(r) and r[0]["value"][1] == "1")
        t0 = time.time()
        first = _run_once(tmp_path, head.env, head.address, 1)
        assert first["energy"]["total_j"] > 0 and first["status"] == "ok"
        at = _settled(prom, first["energy"]["total_j"], 2)
        seen = _panels(prom, dashboard, t0, at)
        _check_run(seen, first, 2)
        assert seen["Cumulative energy per host and meter, J [A]"] == {
            k: [pytest.approx(first["energy"]["total_j"])]
            for k in seen["Cumulative energy per host and meter, J [A]"]}

        t1 = time.time()
        second = _run_once(tmp_path, head.env, head.address, 2)
        at = _settled(prom, first["energy"]["total_j"] + second["energy"]["total_j"], 2 + 4)
        _check_run(_panels(prom, dashboard, t1, at), second, 4)

        # the template variables (Grafana's label_values) list the runs' labels
        for var in dashboard["templating"]["list"]:
            if "definition" not in var:
                continue
            metric, label = var["definition"][len("label_values("):-1].rsplit(", ", 1)
            series = prom.api("series", **{"match[]": _grafana(metric, math.ceil(at - t0)),
                                           "start": t0, "end": at})
            values = {s[label] for s in series if label in s}
            expected = {"workload": {"pi"}, "kind": {first["meter"]["kind"]},
                        "host": {h["host"] for h in first["hosts"]}}.get(label)
            assert values and (expected is None or expected <= values), (var["name"], values)
