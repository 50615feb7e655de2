"""Where the package's threads come from: the table, the name, bare-metal cpuinfo — never a VM's."""

from __future__ import annotations

from pathlib import Path

import pytest

from meters import parse_cpuinfo, resolve_model
from meters._tdp_model import CCF_MAX_W_PER_VCPU
from tests.meters.fake_cpuinfo import ARM64_GRAVITON2, render_cpuinfo

E5_2686 = "Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz"  # CodeCarbon row: 145 W, no threads


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return path


def test_cpuinfo_tells_a_vm_from_bare_metal_and_names_arm_cores() -> None:
    assert parse_cpuinfo(render_cpuinfo(E5_2686)).hypervisor is True
    assert parse_cpuinfo(render_cpuinfo(E5_2686, hypervisor=False)).hypervisor is False
    arm = parse_cpuinfo(ARM64_GRAVITON2)
    assert (arm.hypervisor, arm.model, arm.arm_implementer, arm.arm_part) == \
        (None, None, "0x41", "0xd0c")


def test_on_bare_metal_the_threads_come_from_cpuinfo(tmp_path: Path) -> None:
    text = render_cpuinfo(E5_2686, sockets=2, cores_per_socket=18, hypervisor=False)
    m = resolve_model(cpuinfo=write(tmp_path, text), env={})
    assert (m.basis, m.tdp_w, m.threads) == ("table", 145.0, 36)
    assert "siblings 36 per package" in m.origins["threads"]
    assert m.max_w_per_vcpu == pytest.approx(145 / 36)


def test_on_a_vm_unknown_threads_fall_back_and_say_why(tmp_path: Path) -> None:
    m = resolve_model(cpuinfo=write(tmp_path, render_cpuinfo(E5_2686)), vcpus=2, env={})
    assert m.basis == "fallback" and m.tdp_w == 145.0 and m.threads is None
    assert m.row is not None and m.row.model == "Intel Xeon E5-2686 v4"
    assert "hypervisor flag" in m.source and "threads are unknown" in m.source
    assert m.max_w_per_vcpu == CCF_MAX_W_PER_VCPU  # not 145 W / 2 vCPUs


def test_a_named_core_count_caps_the_fallback(tmp_path: Path) -> None:
    # CodeCarbon: EPYC 7663 240 W, no threads; the name says 56 cores
    name = "AMD EPYC 7663 56-Core Processor"
    m = resolve_model(cpuinfo=write(tmp_path, render_cpuinfo(name, vendor="AuthenticAMD")),
                      vcpus=2, env={})
    assert m.basis == "fallback" and m.max_w_per_vcpu == pytest.approx(240 / 112)
    assert "capped at 240 W / (2 x 56 cores)" in m.source
    cores = render_cpuinfo(name, vendor="AuthenticAMD", cores_per_socket=2, threads_per_core=1)
    whole = resolve_model(cpuinfo=write(tmp_path, cores), vcpus=2, env={})
    assert (whole.basis, whole.threads) == ("table", 56)  # whole-core vCPUs: the name's cores
    assert whole.max_w_per_vcpu == pytest.approx(240 / 56)


def test_a_cpu_named_by_argument_ignores_this_hosts_topology(tmp_path: Path) -> None:
    bare = write(tmp_path, render_cpuinfo("Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz",
                                          cores_per_socket=20, hypervisor=False))
    m = resolve_model(cpuinfo=bare, cpu_model=E5_2686, env={})
    assert m.basis == "fallback" and "named by argument" in m.source


def test_arm_cores_are_named_and_fall_back(tmp_path: Path) -> None:
    m = resolve_model(cpuinfo=write(tmp_path, ARM64_GRAVITON2), vcpus=2, env={})
    assert m.basis == "fallback" and m.row is None
    assert "implementer 0x41 (Arm), part 0xd0c (Neoverse N1)" in m.source
    assert "prints no model name" in m.source
