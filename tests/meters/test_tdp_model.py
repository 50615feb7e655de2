"""The tdp model's unit (thread or core), its overrides and their precedence, and its basis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meters import CPU_THREADS_ENV, TDP_WATTS_ENV, MeterError, TdpMeter, resolve_model
from meters._tdp_model import CCF_IDLE_W_PER_VCPU, CCF_MAX_W_PER_VCPU, IDLE_FRACTION
from tests.meters.fake_cpuinfo import render_cpuinfo

DATA = Path(__file__).with_name("data")
M5_LARGE = DATA / "cpuinfo_aws_m5_large_xeon_8259cl.txt"  # 8259CL: 165 W, 24 cores, 48 threads
C6A_SMT_OFF = DATA / "cpuinfo_aws_c6a_epyc_7r13_smt_off.txt"  # 7R13: 225 W, 48 c, 96 t
THIS_VM = DATA / "cpuinfo_amd_epyc_vm_smt_off.txt"  # real: "AMD EPYC", 2 whole-core vCPUs
ARM64 = DATA / "cpuinfo_arm64_graviton2.txt"


def write(tmp_path: Path, text: str, name: str = "cpuinfo") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_intel_on_aws_with_smt_divides_the_tdp_by_threads() -> None:
    m = resolve_model(cpuinfo=M5_LARGE, vcpus=2, env={})
    assert (m.smt, m.vcpu_unit, m.basis) == (True, "thread", "table")
    assert m.row is not None and m.row.model == "Xeon Platinum 8259CL"
    assert m.threads == 48
    assert m.max_w_per_vcpu == pytest.approx(165 / 48)
    assert m.idle_w_per_vcpu == pytest.approx(IDLE_FRACTION * 165 / 48)
    assert "siblings 2 vs cpu cores 1" in m.origins["smt"]
    assert m.origins["threads"] == "table row Xeon Platinum 8259CL: threads"


def test_amd_epyc_with_smt_off_divides_the_tdp_by_cores(tmp_path: Path) -> None:
    m = resolve_model(cpuinfo=C6A_SMT_OFF, vcpus=4, env={})
    assert (m.smt, m.vcpu_unit, m.basis) == (False, "core", "table")
    assert m.row is not None and m.row.model == "EPYC 7R13"
    assert m.threads == 48
    assert m.max_w_per_vcpu == pytest.approx(225 / 48)
    assert m.max_watts == pytest.approx(4 * 225 / 48)
    assert "siblings 4 vs cpu cores 4" in m.origins["smt"]
    # the same CPU with SMT on: each vCPU is half a core
    smt_on = resolve_model(cpuinfo=write(tmp_path, render_cpuinfo(
        "AMD EPYC 7R13 Processor", vendor="AuthenticAMD", cores_per_socket=2,
        threads_per_core=2)), vcpus=4, env={})
    assert smt_on.vcpu_unit == "thread"
    assert m.max_w_per_vcpu == pytest.approx(2 * smt_on.max_w_per_vcpu)


def test_two_socket_bare_metal_with_smt(tmp_path: Path) -> None:
    text = render_cpuinfo("Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", sockets=2,
                          cores_per_socket=20, threads_per_core=2)
    m = resolve_model(cpuinfo=write(tmp_path, text), env={})
    assert m.smt is True and m.row is not None and m.row.model == "Xeon Gold 6148"
    assert m.max_w_per_vcpu == pytest.approx(150 / 40)  # per thread: 150 W / 40 threads


def test_unknown_cpu_with_whole_core_vcpus_counts_two_threads_each() -> None:
    m = resolve_model(cpuinfo=THIS_VM, vcpus=2, env={})  # "AMD EPYC": no table row
    assert (m.basis, m.smt, m.vcpu_unit) == ("fallback", False, "core")
    assert m.max_w_per_vcpu == pytest.approx(2 * CCF_MAX_W_PER_VCPU)
    assert m.idle_w_per_vcpu == pytest.approx(2 * CCF_IDLE_W_PER_VCPU)
    assert "a whole-core vCPU counts as 2 threads" in m.source
    threads = resolve_model(cpuinfo=THIS_VM, vcpus=2, smt=True, env={})
    assert threads.max_w_per_vcpu == CCF_MAX_W_PER_VCPU and threads.origins["smt"] == \
        "argument smt"


def test_without_topology_a_vcpu_is_a_thread_and_the_basis_says_so() -> None:
    m = resolve_model(cpuinfo=ARM64, cpu_model="AMD EPYC 7763", vcpus=2, env={})
    assert m.smt is None and m.vcpu_unit == "thread"
    assert m.max_w_per_vcpu == pytest.approx(280 / 128)
    assert "taken to be a hardware thread" in m.origins["smt"]
    missing = resolve_model(cpuinfo="/nonexistent/cpuinfo", cpu_model="AMD EPYC 7763",
                            vcpus=2, env={})
    assert "cpuinfo unreadable" in missing.origins["smt"]
    assert missing.max_w_per_vcpu == pytest.approx(280 / 128)


def test_arguments_override_the_table() -> None:
    with TdpMeter(tdp_watts=120.0, cpu_threads=24, cpuinfo=M5_LARGE, vcpus=2) as m:
        assert m.model.basis == "override"
        assert m.model.max_w_per_vcpu == pytest.approx(5.0)
        assert m.max_watts == pytest.approx(10.0)
        assert m.model.origins["tdp_w"] == "argument tdp_watts"
        assert m.model.origins["threads"] == "argument cpu_threads"
        assert m.basis["source"] == ("TDP 120 W (argument tdp_watts) / 24 "
                                     "(argument cpu_threads)")


def test_environment_overrides_the_table_and_arguments_override_both(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TDP_WATTS_ENV, "150")
    monkeypatch.setenv(CPU_THREADS_ENV, "30")
    with TdpMeter(cpuinfo=M5_LARGE, vcpus=2) as m:
        assert m.model.max_w_per_vcpu == pytest.approx(5.0)
        assert m.model.origins == {**m.model.origins, "tdp_w": f"environment {TDP_WATTS_ENV}",
                                   "threads": f"environment {CPU_THREADS_ENV}"}
    with TdpMeter(tdp_watts=60.0, cpuinfo=M5_LARGE, vcpus=2) as m:
        assert m.model.max_w_per_vcpu == pytest.approx(2.0)  # 60 W (argument) / 30 (env)
    with TdpMeter(tdp_watts=60.0, cpu_threads=12, cpuinfo=M5_LARGE, vcpus=2) as m:
        assert m.model.max_w_per_vcpu == pytest.approx(5.0)


def test_a_divisor_alone_reuses_the_table_tdp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CPU_THREADS_ENV, "33")
    m = resolve_model(cpuinfo=M5_LARGE, vcpus=2)
    assert m.basis == "override" and m.tdp_w == 165
    assert m.max_w_per_vcpu == pytest.approx(5.0)
    assert m.origins["tdp_w"] == "table row Xeon Platinum 8259CL"


def test_a_tdp_alone_for_an_unknown_cpu_is_shared_by_the_hosts_vcpus() -> None:
    m = resolve_model(tdp_watts=80.0, cpuinfo=THIS_VM, vcpus=4, env={})
    assert m.basis == "override" and m.threads == 4 and m.max_w_per_vcpu == 20.0


def test_a_divisor_without_any_tdp_is_reported_unused() -> None:
    m = resolve_model(cpu_threads=8, cpuinfo=THIS_VM, vcpus=2, env={})
    assert m.basis == "fallback"
    assert "cpu_threads=8 (argument cpu_threads) is unused without a TDP" in m.source


@pytest.mark.parametrize(("name", "value", "match"), [
    (TDP_WATTS_ENV, "lots", "RAYJOULE_TDP_WATTS='lots' is not watts"),
    (TDP_WATTS_ENV, "-3", "tdp_watts must be > 0 W.*environment RAYJOULE_TDP_WATTS"),
    (TDP_WATTS_ENV, "inf", "tdp_watts must be > 0 W and finite, got inf"),
    (TDP_WATTS_ENV, "nan", "tdp_watts must be > 0 W and finite, got nan"),
    (CPU_THREADS_ENV, "2.5", "RAYJOULE_CPU_THREADS='2.5' is not a whole number"),
    (CPU_THREADS_ENV, "0", "cpu_threads must be >= 1"),
])
def test_bad_environment_values_are_errors_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch, name: str, value: str, match: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(MeterError, match=match):
        TdpMeter(cpuinfo=M5_LARGE)
    probe = TdpMeter.probe(cpuinfo=M5_LARGE)
    assert not probe.available and name in probe.reason


def test_basis_is_json_safe_and_complete() -> None:
    with TdpMeter(cpuinfo=C6A_SMT_OFF, vcpus=4) as m:
        basis = m.basis
    assert json.loads(json.dumps(basis)) == basis
    assert basis["meter"] == "tdp" and basis["kind"] == "modelled"
    assert basis["basis"] == "table"
    assert basis["row"]["model"] == "EPYC 7R13" and "aws.amazon.com" in basis["row"]["source"]
    assert basis["watts_per_vcpu"] == pytest.approx(225 / 48)
    assert basis["idle_watts"] == pytest.approx(4 * IDLE_FRACTION * 225 / 48)
    assert basis["max_watts"] == pytest.approx(4 * 225 / 48)
    assert basis["smt"] is False and basis["vcpu_unit"] == "core"
    assert basis["scope"] == "host" and "P(u)" in basis["curve"]
