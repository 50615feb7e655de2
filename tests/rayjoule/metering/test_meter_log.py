"""The meter actors' energy log: one line per window in Ray's session logs, none on a terminal.

A private Ray head (``tests_support.private_ray``) runs a measured block, whose driver
creates the meter actor with Ray's default ``log_to_driver=True`` (the case where an
actor's output would stream to a user's terminal), then a ``rayjoule.run``. Both
drivers' whole output is captured; the log file in the head's session logs folder must
hold each run's line, and neither output any of it. The actor's repr (what the
dashboard's Actors page shows) is read back through Ray's state API, the run's job
metadata through the dashboard's ``/api/jobs/`` (what its Jobs page lists).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from rayjoule.core.result import MeterLabel
from rayjoule.metering.host_meter import WindowEnergy
from rayjoule.metering.window_log import WindowLog, log_file_name
from tests_support.private_ray import private_head


def _window(total_j: float, seconds: float, complete: bool = True) -> WindowEnergy:
    return WindowEnergy(host="vm:abc/1", meter=MeterLabel("rapl", "measured"), t0=10.0,
                        t1=10.0 + seconds, total_j=total_j, by_domain={"package-0": total_j},
                        complete=complete)


def test_a_window_line_names_run_workload_host_joules_seconds_watts_meter_and_kind(tmp_path):
    log = WindowLog("vm:abc/1", logs_dir=str(tmp_path))
    log.window(_window(31.09, 2.5), "run123", "pi", "ray")
    log.window(_window(4.0, 2.0, complete=False), None, None, "ray")
    assert Path(log.path).name == log_file_name("vm:abc/1") == "rayjoule-meter-vm_abc_1.log"
    first, second = Path(log.path).read_text().splitlines()
    assert first.endswith("window run=run123 workload=pi framework=ray host=vm:abc/1 "
                          "joules=31.09 seconds=2.50 watts=12.44 meter=rapl kind=measured")
    assert second.endswith("run=- workload=- framework=ray host=vm:abc/1 joules=4.00 "
                           "seconds=2.00 watts=2.00 meter=rapl kind=measured complete=false")


BLOCK = textwrap.dedent("""
    import json, sys, time
    import ray, rayjoule

    ray.init(address=sys.argv[1])  # Ray's defaults: actor output streams to this driver
    @ray.remote
    def square(x):
        return x * x
    with rayjoule.measure("squares", meter="tdp", db=None, idle_seconds=0,
                          background=False) as m:
        ray.get([square.remote(i) for i in range(4)])
    time.sleep(3)  # Ray's log monitor would have streamed any actor line by now
    print(json.dumps({"run_id": m.run_id, "total_j": m.result.energy.total_j}))
""")

STATE = textwrap.dedent("""
    import json, sys
    import ray
    from ray.util.state import list_actors

    ray.init(address=sys.argv[1], log_to_driver=False)
    actors = [a.name + " | " + (a.repr_name or "")
              for a in list_actors(address=sys.argv[1], filters=[("state", "=", "ALIVE")],
                                   detail=True)
              if (a.name or "").startswith("rayjoule-meter:")]
    print(json.dumps(actors))
""")


def _python(code_or_args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *code_or_args], env=env, capture_output=True,
                          text=True, timeout=240, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_each_window_is_logged_in_rays_logs_and_never_reaches_a_terminal(tmp_path):
    with private_head(num_cpus=2) as head:
        block = _python(["-c", BLOCK, head.address], head.env, tmp_path)
        measured = json.loads(block.stdout.strip().splitlines()[-1])
        out = tmp_path / "run.json"
        run = _python(["-m", "rayjoule.run", "--workload", "pi", "--size", "200000",
                       "--framework", "ray", "--tasks", "2", "--meter", "tdp",
                       "--idle-seconds", "0", "--address", head.address,
                       "--db", str(tmp_path / "r.sqlite"), "--json", str(out)],
                      head.env, tmp_path)
        result = json.loads(out.read_text())
        actors = json.loads(_python(["-c", STATE, head.address], head.env,
                                    tmp_path).stdout.strip().splitlines()[-1])
        with urllib.request.urlopen(f"{head.dashboard_url}/api/jobs/", timeout=30) as resp:
            jobs = json.load(resp)  # what the dashboard's Jobs page lists
        [log_file] = (head.temp_dir / "session_latest" / "logs").glob("rayjoule-meter-*.log")
        lines = log_file.read_text().splitlines()

    for proc in (block, run):  # nothing of the actor's log in either driver's output
        assert "window run=" not in proc.stdout + proc.stderr
    by_run = {ln.split("window run=")[1].split()[0]: ln for ln in lines}
    for run_id, total_j, workload in ((measured["run_id"], measured["total_j"], "squares"),
                                      (result["run_id"], result["energy"]["total_j"], "pi")):
        line = by_run[run_id]
        assert f"workload={workload} " in line and "meter=tdp kind=modelled" in line, line
        assert float(line.split("joules=")[1].split()[0]) == pytest.approx(total_j, abs=0.01)
    # the Actors page: the repr points at that file, and stays true whatever ran since
    [actor] = actors
    assert actor.endswith(f"joules of each run in {log_file.name} "
                          "(dashboard Logs page, this node)"), actor
    # the Jobs page: the run's driver job names the run
    [meta] = [j["metadata"] for j in jobs if (j.get("metadata") or {}).get("rayjoule") == "run"]
    assert meta["workload"] == "pi" and meta["framework"] == "ray"
    assert json.loads(meta["rayjoule.tasks"]) == 2 and json.loads(meta["rayjoule.size"]) == 200000
