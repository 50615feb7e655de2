"""A run metered by RAPL on a fake powercap tree driven by another process at known watts."""

import subprocess
import sys
import textwrap

import pytest

from rayjoule import RunConfig, run
from tests.meters.fake_powercap import make_powercap_tree

WATTS = {"package-0": 25.0, "dram-0": 5.0}

DRIVER = textwrap.dedent("""
    import sys, time
    from tests.meters.fake_powercap import FakePowercapDriver
    with FakePowercapDriver(sys.argv[1], watts={"package-0": 25.0, "dram-0": 5.0}):
        print("driving", flush=True)
        time.sleep(600)
""")


@pytest.fixture
def driven_tree(tmp_path, monkeypatch):
    tree = make_powercap_tree(tmp_path / "pc", sockets=1, with_core=True, with_dram=True)
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(tree.base)],
                            stdout=subprocess.PIPE, text=True, cwd=str(_repo_root()))
    assert proc.stdout.readline().strip() == "driving"
    monkeypatch.setenv("RAYJOULE_POWERCAP_ROOT", str(tree.root))
    yield tree
    proc.kill()
    proc.wait()


def _repo_root():
    from pathlib import Path

    return Path(__file__).resolve().parents[3]


def test_total_energy_matches_power_times_wall_time(driven_tree, tmp_path):
    r = run(RunConfig(workload="sleep", size=1.5, tasks=3, framework="native",
                      meter="rapl", idle_seconds=0), db=tmp_path / "r.sqlite")
    expected = sum(WATTS.values()) * r.wall_s
    assert r.meter.name == "rapl" and r.meter.kind == "measured"
    assert r.energy.total_j == pytest.approx(expected, rel=0.05)
    assert set(r.energy.by_domain) >= {"package-0", "dram-0"}


def test_measured_idle_baseline_makes_constant_power_static(driven_tree, tmp_path):
    r = run(RunConfig(workload="sleep", size=1.0, tasks=2, framework="native",
                      meter="rapl", idle_seconds=1.0), db=tmp_path / "r.sqlite")
    assert r.hosts[0].idle_w == pytest.approx(sum(WATTS.values()), rel=0.05)
    assert "measured" in r.hosts[0].idle_policy
    assert abs(r.energy.dynamic_j) < 0.05 * r.energy.total_j
