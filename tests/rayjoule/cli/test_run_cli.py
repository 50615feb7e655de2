"""``python -m rayjoule.run`` and ``python -m rayjoule.export`` as a user runs them."""

import json
import sqlite3
import subprocess
import sys

import pytest


def cli(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_run_prints_a_labelled_report_and_writes_json(tmp_path):
    out = tmp_path / "r.json"
    proc = cli("rayjoule.run", "--workload", "pi", "--size", "1e6", "--tasks", "3",
               "--meter", "tdp", "--idle-seconds", "0", "--db", str(tmp_path / "r.sqlite"),
               "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "[meter tdp, modelled]" in proc.stdout
    data = json.loads(out.read_text())
    assert set(data) >= {"run_id", "workload", "framework", "config", "wall_s", "energy",
                         "meter", "tasks", "summary"}
    assert set(data["energy"]) == {"total_j", "static_j", "dynamic_j", "tasks_j",
                                   "overhead_j", "by_domain"}
    assert set(data["tasks"][0]) == {"task_id", "node_id", "host", "pid", "start", "end",
                                     "cpu_s", "stage", "slot_cpus", "static_j", "dynamic_j",
                                     "energy_j"}
    assert data["meter"] == {"name": "tdp", "kind": "modelled"}


@pytest.mark.parametrize("args, message", [
    (["--workload", "nope"], "unknown workload"),
    (["--workload", "pi", "--tasks", "0"], "tasks must be >= 1"),
    (["--workload", "pi", "--concurrency", "-2"], "concurrency must be >= 1"),
    (["--workload", "pi", "--meter", "rapl"], "powercap"),
    (["--workload", "pi", "--meter", "nosuchmeter"], "nosuchmeter"),
    (["--workload", "airbnb", "--param", "data=/nope/reviews.csv"], "/nope/reviews.csv"),
    (["--workload", "pi", "--param", "kernel"], "key=value"),
    (["--workload", "pi", "--param", "colour=red"], "colour"),
    (["--workload", "pi", "--framework", "native", "--mode", "actors"], "actors"),
    (["--workload", "pi", "--bogus"], "unrecognized arguments"),
])
def test_bad_input_is_one_line_and_exit_2_and_keeps_the_store(tmp_path, args, message):
    db = tmp_path / "r.sqlite"
    ok = cli("rayjoule.run", "--workload", "sleep", "--size", "0", "--meter", "tdp",
             "--idle-seconds", "0", "--db", str(db))
    assert ok.returncode == 0, ok.stderr
    proc = cli("rayjoule.run", "--db", str(db), *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    rows = sqlite3.connect(db).execute("SELECT status FROM runs").fetchall()
    assert rows == [("ok",)]


def test_unavailable_meter_inside_a_ray_actor_is_one_clear_line(tmp_path):
    proc = cli("rayjoule.run", "--workload", "pi", "--size", "1e5", "--framework", "ray",
               "--meter", "rapl", "--db", str(tmp_path / "r.sqlite"))
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("rayjoule: error: ") and "powercap" in last
    assert "Traceback" not in proc.stderr and "File " not in proc.stderr


def test_exit_statuses_follow_the_design(capsys):
    from meters import MeterUnavailable
    from rayjoule.cli.common import run_command
    from rayjoule.core.errors import ConfigError, RunFailed

    def failing(exc):
        def main(argv):
            raise exc
        return main

    assert run_command(lambda argv: 0, []) == 0
    assert run_command(failing(RunFailed("task 3 raised ValueError: x")), []) == 1
    assert run_command(failing(ConfigError("tasks must be >= 1")), []) == 2
    assert run_command(failing(MeterUnavailable("no powercap")), []) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["rayjoule: run failed: task 3 raised ValueError: x",
                   "rayjoule: error: tasks must be >= 1", "rayjoule: error: no powercap"]


def test_export_writes_parquet(tmp_path):
    db = tmp_path / "r.sqlite"
    assert cli("rayjoule.run", "--workload", "pi", "--size", "1e5", "--meter", "tdp",
               "--idle-seconds", "0", "--db", str(db)).returncode == 0
    proc = cli("rayjoule.export", "--db", str(db), "--out", str(tmp_path / "pq"))
    assert proc.returncode == 0, proc.stderr
    import pandas as pd

    assert len(pd.read_parquet(tmp_path / "pq" / "runs.parquet")) == 1
    assert cli("rayjoule.export", "--db", str(tmp_path / "none.sqlite"), "--out",
               str(tmp_path / "x")).returncode == 2
