"""CallMeter: a function meters itself, measured by RAPL where readable, else modelled."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meters import MEMORY_W_PER_GB, CallMeter, MeterError, process_cpu_seconds
from meters._tdp_model import IDLE_FRACTION
from tests.meters.fake_powercap import FakePowercapDriver, make_powercap_tree

DATA = Path(__file__).with_name("data")
M5_LARGE = DATA / "cpuinfo_aws_m5_large_xeon_8259cl.txt"  # 165 W / 48 threads, SMT on
BURN = "import time\nwhile time.process_time() < {s}: pass\n"


class Clocks:
    """Wall and CPU clocks the test moves by hand."""

    def __init__(self) -> None:
        self.wall, self.cpu = 100.0, 7.0

    def run(self, wall_s: float, cpu_s: float) -> None:
        self.wall += wall_s
        self.cpu += cpu_s


def test_rapl_where_readable(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path / "pc", sockets=1)
    with CallMeter(vcpus=2, root=tree.root) as cm:
        tree.advance("package-0", joules=12)
        tree.advance("core-0", joules=9)
        tree.advance("dram-0", joules=3)
    r = cm.result
    assert r is not None and json.loads(json.dumps(r)) == r
    assert (r["kind"], r["meter"]) == ("measured", "rapl")
    assert r["energy_j"] == pytest.approx(15)
    assert r["by_domain"] == pytest.approx({"package-0": 12, "core-0": 9, "dram-0": 3})
    assert "static_j" not in r, "no idle baseline inside a call"
    assert r["basis"]["total_domains"] == ["package-0", "dram-0"]
    assert r["basis"]["model"] == "measured: the machine's RAPL package-0 + dram-0 over the call"
    assert "whole machine" in r["basis"]["scope"]
    assert r["wall_s"] >= 0 and r["cpu_s"] >= 0 and r["vcpus"] == 2
    assert r["host"]["hostname"]


def test_rapl_root_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = make_powercap_tree(tmp_path / "pc", sockets=1)
    monkeypatch.setenv("RAYJOULE_POWERCAP_ROOT", str(tree.root))
    with FakePowercapDriver(tree, watts={"package-0": 30.0}) as drv, CallMeter() as cm:
        time.sleep(0.2)
    assert cm.result["kind"] == "measured"
    assert 0 < cm.result["energy_j"] <= drv.added_j("package-0") + 1e-9


def test_modelled_without_rapl(tmp_path: Path) -> None:
    clocks = Clocks()
    cm = CallMeter(vcpus=2, memory_mb=2048, root=tmp_path / "no-powercap", cpuinfo=M5_LARGE,
                   clock=lambda: clocks.wall, cpu_clock=lambda: clocks.cpu)
    with cm:
        clocks.run(wall_s=10.0, cpu_s=4.0)
    r = cm.result
    assert r is not None and json.loads(json.dumps(r)) == r
    p_max = 165 / 48
    p_idle = IDLE_FRACTION * p_max
    cpu_j = 2 * p_idle * 10 + 4.0 * (p_max - p_idle)
    mem_j = 2.0 * MEMORY_W_PER_GB * 10
    assert (r["kind"], r["meter"]) == ("modelled", "tdp")
    assert (r["wall_s"], r["cpu_s"]) == (10.0, 4.0)
    assert r["by_domain"] == pytest.approx({"cpu": cpu_j, "memory": mem_j})
    assert r["energy_j"] == pytest.approx(cpu_j + mem_j)
    assert r["static_j"] == pytest.approx(2 * p_idle * 10 + mem_j)
    assert r["dynamic_j"] == pytest.approx(4.0 * (p_max - p_idle))
    b = r["basis"]
    assert b["scope"] == "call" and b["vcpus"] == 2 and b["vcpus_source"] == "argument"
    assert b["row"]["model"] == "Xeon Platinum 8259CL" and b["vcpu_unit"] == "thread"
    assert b["model"].startswith("modelled (table): E = V*P_idle*wall_s")
    assert "no powercap tree" in b["rapl_unavailable"]
    assert b["idle_watts"] == pytest.approx(2 * p_idle)


def test_modelled_cpu_is_capped_by_the_calls_vcpus(tmp_path: Path) -> None:
    clocks = Clocks()
    with CallMeter(vcpus=0.5, use_rapl=False, cpuinfo=M5_LARGE, clock=lambda: clocks.wall,
                   cpu_clock=lambda: clocks.cpu) as cm:
        clocks.run(wall_s=2.0, cpu_s=2.0)  # a half-vCPU function cannot burn 2 CPU-s in 2 s
    b = cm.result["basis"]
    assert b["busy_cpu_s"] == 1.0 and b["rapl_unavailable"] == "use_rapl=False"
    assert cm.result["by_domain"]["cpu"] == pytest.approx(0.5 * b["max_w_per_vcpu"] * 2.0)


def test_overrides_reach_the_model() -> None:
    clocks = Clocks()
    with CallMeter(vcpus=1, use_rapl=False, tdp_watts=100.0, cpu_threads=10,
                   clock=lambda: clocks.wall, cpu_clock=lambda: clocks.cpu) as cm:
        clocks.run(wall_s=1.0, cpu_s=1.0)
    assert cm.result["energy_j"] == pytest.approx(10.0)  # one vCPU at 100 W / 10, fully busy
    assert cm.result["basis"]["basis"] == "override"


def test_real_cpu_time_of_the_process_and_its_children() -> None:
    with CallMeter(vcpus=1, use_rapl=False, cpuinfo=M5_LARGE) as cm:
        subprocess.run([sys.executable, "-c", BURN.format(s=0.3)], check=True)
        t0 = time.process_time()
        while time.process_time() - t0 < 0.1:  # the call's own thread burns too
            pass
    r = cm.result
    assert r["cpu_s"] >= 0.3 + 0.1 - 0.05
    assert r["cpu_s"] <= r["wall_s"] + 1.0
    assert r["energy_j"] > 0


def test_result_is_kept_when_the_function_raises() -> None:
    cm = CallMeter(vcpus=1, use_rapl=False)
    with pytest.raises(ZeroDivisionError), cm:
        _ = 1 / 0
    assert cm.result is not None and cm.result["kind"] == "modelled"


def test_one_call_per_meter_and_bad_arguments() -> None:
    cm = CallMeter(vcpus=1, use_rapl=False)
    with pytest.raises(MeterError, match="before start"):
        cm.stop()
    with cm:
        pass
    with pytest.raises(MeterError, match="already metered"), cm:
        pass
    with pytest.raises(MeterError, match="vcpus"):
        CallMeter(vcpus=0)
    with pytest.raises(MeterError, match="memory_mb"):
        CallMeter(memory_mb=-1)


def test_process_cpu_seconds_grows() -> None:
    before = process_cpu_seconds()
    t0 = time.process_time()
    while time.process_time() - t0 < 0.05:
        pass
    assert process_cpu_seconds() - before >= 0.04
