"""``python -m rayjoule.workloads``: listing, JSON, and the serial reference run."""

from __future__ import annotations

import json

import pytest

import workloads
from rayjoule.workloads import main


def test_lists_every_workload(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in workloads.names():
        assert name in out


def test_json_listing(tmp_path):
    path = tmp_path / "out" / "workloads.json"
    assert main(["--json", str(path)]) == 0
    listing = json.loads(path.read_text())["workloads"]
    assert [entry["name"] for entry in listing] == workloads.names()
    mandelbrot = listing[1]
    assert mandelbrot["default_size"] == workloads.get("mandelbrot").default_size
    assert {"name": "max_iter", "type": "int", "default": 300} .items() <= (
        mandelbrot["params"][0].items())


def test_serial_run_writes_summary(tmp_path, capsys):
    path = tmp_path / "primes.json"
    assert main(["primes", "--size", "100", "--tasks", "3", "--json", str(path)]) == 0
    payload = json.loads(path.read_text())
    assert payload["summary"] == {"limit": 100, "count": 25, "max_prime": 97}
    assert payload["tasks"] == {"map": 3} and "97" in capsys.readouterr().out


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--json" in capsys.readouterr().out


def test_bad_param_raises_workload_error():
    with pytest.raises(workloads.WorkloadError, match="kernel"):
        main(["pi", "--param", "kernel=fortran"])
