"""``python -m rayjoule.meters`` end to end, in a subprocess as a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.meters.fake_powercap import FakePowercapDriver, make_powercap_tree

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None,
            command: tuple[str, ...] = ("-m", "rayjoule.meters")
            ) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "RAYJOULE_POWERCAP_ROOT"}
    full_env.update(env or {})
    full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), full_env.get("PYTHONPATH", "")])
    full_env["COLUMNS"] = "120"
    return subprocess.run([sys.executable, *command, *args], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [("-m", "rayjoule.meters"),
                                     ("-m", "rayjoule.cli.console", "meters")],
                         ids=["python -m rayjoule.meters", "rayjoule meters"])
def test_this_host_without_counters(tmp_path: Path, command: tuple[str, ...]) -> None:
    out = tmp_path / "out.json"
    env = {"RAYJOULE_POWERCAP_ROOT": str(tmp_path / "no-powercap-here")}
    proc = run_cli("--json", str(out), "--sample-seconds", "0.2", "--no-gpu", env=env,
                   command=command)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(out.read_text())
    by_name = {m["name"]: m for m in payload["meters"]}
    tdp = by_name["tdp"]
    assert tdp["available"] and tdp["kind"] == "modelled" and tdp["domains"] == ["cpu"]
    assert tdp["sample_watts"]["total"] > 0
    assert not by_name["rapl"]["available"] and "no powercap tree" in by_name["rapl"]["reason"]
    assert by_name["rapl"]["sample_watts"] is None
    assert payload["chosen"][0] == "tdp"
    for m in payload["meters"]:
        assert {"name", "available", "kind", "domains", "reason", "sample_watts"} <= set(m)
    assert payload["tdp_model"]["idle_watts"] > 0
    assert "tdp model" in proc.stdout and "rapl unavailable" in proc.stdout


def test_fake_powercap_tree_is_measured(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path / "pc", sockets=2)
    out = tmp_path / "out.json"
    with FakePowercapDriver(tree, watts={"package-0": 20.0}):
        proc = run_cli("--json", str(out), "--sample-seconds", "0.5", "--no-gpu",
                       env={"RAYJOULE_POWERCAP_ROOT": str(tree.root)})
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(out.read_text())
    rapl = next(m for m in payload["meters"] if m["name"] == "rapl")
    assert rapl["available"] and rapl["kind"] == "measured"
    assert "package-1" in rapl["domains"]
    assert payload["chosen"] == ["rapl"]
    assert rapl["sample_watts"]["by_domain"]["package-0"] == pytest.approx(20.0, rel=0.25)


def test_help() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0 and "--sample-seconds" in proc.stdout


def test_bad_input_is_one_line_and_exit_2() -> None:
    proc = run_cli("--sample-seconds", "abc")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_out_of_range_is_one_line_and_exit_2() -> None:
    try:  # run_command maps every package's base error; workloads may not exist yet
        import workloads  # noqa: F401
        from workloads import WorkloadError  # noqa: F401
    except ImportError:
        pytest.skip("workloads.WorkloadError is not there yet (rayjoule.cli.common needs it)")
    proc = run_cli("--sample-seconds", "-1")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "rayjoule: error: --sample-seconds must be between 0 and 600, got -1"
    ]


def test_cpu_option_names_the_row_its_source_and_the_rule(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    proc = run_cli("--cpu", "AMD EPYC 7R13 Processor", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(out.read_text())
    model = payload["tdp_model"]
    assert payload["cpu"] == "AMD EPYC 7R13 Processor" and "meters" not in payload
    assert model["basis"] == "table" and model["row"]["model"] == "EPYC 7R13"
    assert model["rule"].endswith("'amd epyc 7r13'") and "aws.amazon.com" in model["source"]
    assert "EPYC 7R13 (amd), 225 W" in proc.stdout and "match rule" in proc.stdout


def test_cpu_option_says_why_an_unknown_name_falls_back() -> None:
    proc = run_cli("--cpu", "Intel(R) Xeon(R) CPU @ 2.20GHz")
    assert proc.returncode == 0, proc.stderr
    assert "why fallback" in proc.stdout and "gives no model number" in proc.stdout


def test_empty_cpu_option_is_bad_input() -> None:
    proc = run_cli("--cpu", "  ")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--cpu" in proc.stderr
