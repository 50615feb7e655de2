"""Real ``/proc/cpuinfo`` model names against the CPU table, with TDPs from the vendors' pages.

``data/cpuinfo_model_names.csv`` lists 276 model names exactly as public
cpuinfo dumps print them (``name_source``: RunPod's list of its hosts' CPU
names, btop's test names, or a code search for the exact string in public
cpuinfo/lscpu dumps), each with the TDP, cores and threads from the vendor's
specification page (``spec_source``: ark.intel.com, amd.com) — not from the
table under test.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from meters import explain_match, resolve_model
from tests.meters.fake_cpuinfo import render_cpuinfo

NAMES = Path(__file__).with_name("data") / "cpuinfo_model_names.csv"
TOLERANCE = 0.05


def listed() -> list[dict[str, str]]:
    with open(NAMES, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_list_is_real_names_with_sources_across_vendors_and_segments() -> None:
    rows = listed()
    assert len(rows) >= 100
    assert len({r["cpuinfo_name"] for r in rows}) == len(rows)
    for r in rows:
        assert r["name_source"].startswith("https://") and r["spec_source"].startswith(
            ("https://ark.intel.com/", "https://www.amd.com/")), r
        assert float(r["tdp_w"]) > 0 and int(r["threads"]) >= int(r["cores"]) > 0, r
    segments = {(("AMD" if "amd.com" in r["spec_source"] else "Intel"), r["segment"])
                for r in rows}
    for vendor in ("Intel", "AMD"):
        for segment in ("desktop", "mobile", "server"):
            assert (vendor, segment) in segments


def test_most_names_resolve_to_the_vendors_tdp_and_the_rest_fall_back_with_a_reason() -> None:
    rows = listed()
    resolved = wrong = fell_back = 0
    for r in rows:
        m = explain_match(r["cpuinfo_name"])
        expected = float(r["tdp_w"])
        if m.row is None:
            fell_back += 1
            assert m.reason, r
        elif abs(m.row.tdp_w - expected) <= TOLERANCE * expected:
            resolved += 1
            assert m.rule and m.key and m.row.source, r
        else:
            wrong += 1
    assert wrong == 0
    assert resolved / len(rows) >= 0.85, (resolved, fell_back, len(rows))


@pytest.mark.parametrize("smt", [True, False], ids=["vCPU=thread", "vCPU=core"])
def test_on_a_two_vcpu_vm_no_name_charges_more_than_its_tdp_per_thread(
        tmp_path: Path, smt: bool) -> None:
    """A VM's cpuinfo shows its own 2 vCPUs: the TDP must never be divided by them."""
    cpuinfo = tmp_path / "cpuinfo"
    for r in listed():
        amd = "amd.com" in r["spec_source"]
        cpuinfo.write_text(render_cpuinfo(
            r["cpuinfo_name"], vendor="AuthenticAMD" if amd else "GenuineIntel",
            cores_per_socket=1 if smt else 2, threads_per_core=2 if smt else 1))
        m = resolve_model(cpuinfo=cpuinfo, vcpus=2, env={})
        units = int(r["threads"]) if smt else int(r["cores"])
        assert m.vcpu_unit == ("thread" if smt else "core")
        assert m.max_w_per_vcpu <= float(r["tdp_w"]) / units * (1 + TOLERANCE), (r, m)
        if m.basis == "fallback":
            assert "not in the CPU power table" in m.source or "unknown" in m.source, m
        else:
            assert m.threads is not None and m.threads > 2, m
