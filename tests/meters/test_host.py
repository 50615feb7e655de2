"""cpuinfo parsing (vendor, model, threads vs cores) and describe_host()."""

from __future__ import annotations

import json
import os
import platform
import socket
from pathlib import Path

import psutil
import pytest

import meters
from meters import CPUINFO_ENV, describe_host, parse_cpuinfo, read_cpuinfo
from tests.meters.fake_cpuinfo import render_cpuinfo

DATA = Path(__file__).with_name("data")


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("cpuinfo_amd_epyc_vm_smt_off.txt",
         ("AuthenticAMD", "AMD EPYC", 2, 2, 1, False)),
        ("cpuinfo_aws_m5_large_xeon_8259cl.txt",
         ("GenuineIntel", "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz", 2, 1, 1, True)),
        ("cpuinfo_aws_c6a_epyc_7r13_smt_off.txt",
         ("AuthenticAMD", "AMD EPYC 7R13 Processor", 4, 4, 1, False)),
        ("cpuinfo_arm64_graviton2.txt", (None, None, 2, None, None, None)),
    ],
)
def test_recorded_and_rendered_cpuinfo(fixture: str, expected: tuple) -> None:
    info = read_cpuinfo(DATA / fixture)
    assert (info.vendor, info.model, info.logical, info.cores, info.sockets,
            info.smt) == expected
    assert info.source == str(DATA / fixture)


def test_two_sockets_with_smt() -> None:
    info = parse_cpuinfo(render_cpuinfo("Intel(R) Xeon(R) Platinum 9282 CPU @ 2.60GHz",
                                        sockets=2, cores_per_socket=56, threads_per_core=2))
    assert (info.logical, info.cores, info.sockets, info.siblings, info.cores_per_socket,
            info.smt) == (224, 112, 2, 112, 56, True)


def test_core_ids_alone_decide_smt_when_siblings_are_missing() -> None:
    blocks = "".join(f"processor\t: {p}\nphysical id\t: 0\ncore id\t\t: {p // 2}\n\n"
                     for p in range(4))
    info = parse_cpuinfo(blocks)
    assert (info.logical, info.cores, info.smt) == (4, 2, True)


def test_environment_names_the_cpuinfo_file(monkeypatch: pytest.MonkeyPatch) -> None:
    path = DATA / "cpuinfo_aws_m5_large_xeon_8259cl.txt"
    monkeypatch.setenv(CPUINFO_ENV, str(path))
    assert read_cpuinfo().source == str(path)
    assert describe_host()["cpu_model"] == "Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz"


def test_describe_host_from_a_cpuinfo_file() -> None:
    host = describe_host(DATA / "cpuinfo_aws_c6a_epyc_7r13_smt_off.txt")
    assert json.loads(json.dumps(host)) == host
    assert host["cpu_model"] == "AMD EPYC 7R13 Processor"
    assert host["vendor"] == "AuthenticAMD"
    assert (host["vcpus"], host["cores"], host["sockets"], host["smt"]) == (4, 4, 1, False)
    assert host["memory_bytes"] == psutil.virtual_memory().total
    assert host["kernel"] == platform.release()
    assert host["hostname"] == socket.gethostname()
    assert host["cpuinfo"].endswith("cpuinfo_aws_c6a_epyc_7r13_smt_off.txt")


def test_describe_host_without_cpuinfo_says_why(tmp_path: Path) -> None:
    host = describe_host(tmp_path / "missing")
    assert host["cpu_model"] is None and host["smt"] is None and host["cores"] is None
    assert host["vcpus"] == os.cpu_count()
    assert host["cpuinfo"].startswith("unreadable: ") and "missing" in host["cpuinfo"]


def test_describe_host_is_public() -> None:
    assert "describe_host" in meters.__all__
    assert set(describe_host()) == {"cpu_model", "vendor", "vcpus", "cores", "sockets", "smt",
                                    "memory_bytes", "kernel", "hostname", "cpuinfo"}
