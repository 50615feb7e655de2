"""RaplMeter against fake powercap trees."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from meters import (
    RAPL_ACCESS_HELP,
    MeterUnavailable,
    RaplMeter,
    SamplerFailed,
    counter_delta,
    discover_zones,
)
from meters._powercap import WORST_CASE_W, read_text
from meters.testing import MeterContract
from tests.meters.fake_powercap import FakePowercap, FakePowercapDriver, make_powercap_tree

SLOW = 3600.0  # an interval long enough that the background sampler never runs in a test


class TestRaplContract(MeterContract):
    @pytest.fixture
    def make_meter(self, powercap: FakePowercap):
        return lambda: RaplMeter(root=powercap.root)

    @pytest.fixture(autouse=True)
    def _tree(self, powercap: FakePowercap) -> None:
        self.tree = powercap

    def advance(self, meter: RaplMeter) -> None:
        for d in ("package-0", "package-1", "dram-0", "core-1"):
            self.tree.advance(d, joules=0.75)


def test_domains_of_two_sockets_are_named_with_their_socket(powercap: FakePowercap) -> None:
    with RaplMeter(root=powercap.root) as m:
        assert sorted(m.domains) == ["core-0", "core-1", "dram-0", "dram-1",
                                     "package-0", "package-1"]
        assert sorted(m.total_domains) == ["dram-0", "dram-1", "package-0", "package-1"]


def test_each_zone_counted_once_despite_flat_links_and_nesting(powercap: FakePowercap) -> None:
    zones = discover_zones(powercap.root)
    assert len(zones) == 6
    assert len({z.zone_id for z in zones}) == 6
    assert len({os.path.realpath(z.path) for z in zones}) == 6
    # the same tree seen only through the nested folders (no flat links) gives the same zones
    nested = powercap.base / "sys" / "devices" / "virtual" / "powercap"
    assert sorted(z.domain for z in discover_zones(nested)) == sorted(z.domain for z in zones)


def test_total_is_packages_plus_dram_not_core(powercap: FakePowercap) -> None:
    with RaplMeter(root=powercap.root, interval_s=SLOW) as m:
        powercap.advance("package-0", joules=10)
        powercap.advance("package-1", joules=20)
        powercap.advance("core-0", joules=8)  # inside package-0: not added again
        powercap.advance("dram-1", joules=3)
        r = m.read()
    assert r.joules["core-0"] == pytest.approx(8)
    assert r.total == pytest.approx(33)
    assert r.kind == "measured" and r.source == "rapl"


def test_basis_lists_the_zones_counted(powercap: FakePowercap) -> None:
    with RaplMeter(root=powercap.root, interval_s=SLOW) as m:
        basis = m.basis
    assert json.loads(json.dumps(basis)) == basis
    assert basis["meter"] == "rapl" and basis["kind"] == "measured"
    assert basis["root"] == str(powercap.root)
    assert [(z["zone_id"], z["domain"], z["in_total"]) for z in basis["zones"]] == [
        ("intel-rapl:0", "package-0", True), ("intel-rapl:0:0", "core-0", False),
        ("intel-rapl:0:1", "dram-0", True), ("intel-rapl:1", "package-1", True),
        ("intel-rapl:1:0", "core-1", False), ("intel-rapl:1:1", "dram-1", True)]
    assert basis["total_domains"] == ["package-0", "dram-0", "package-1", "dram-1"]
    assert basis["total_rule"].startswith("packages + dram")
    assert basis["die_zones"]["decided_by"] == "no die zones" and basis["not_read"] == {}


def test_psys_alone_is_the_total(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path, sockets=1, with_psys=True, with_uncore=True)
    with RaplMeter(root=tree.root, interval_s=SLOW) as m:
        assert set(m.domains) == {"package-0", "core-0", "uncore-0", "dram-0", "psys"}
        for d, j in {"package-0": 5, "dram-0": 1, "uncore-0": 1, "psys": 9}.items():
            tree.advance(d, joules=j)
        r = m.read()
    assert r.total_domains == ("psys",)
    assert r.total == pytest.approx(9)


def test_mmio_duplicate_of_package_is_ignored(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path, sockets=1, with_mmio=True)
    with RaplMeter(root=tree.root, interval_s=SLOW) as m:
        assert m.domains.count("package-0") == 1
        assert not any("mmio" in z.zone_id for z in m.zones)
        tree.advance("package-0", joules=4)
        tree.advance("mmio:package-0", joules=4)
        assert m.read().total == pytest.approx(4)


def test_mmio_alone_is_used(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path, sockets=0, with_mmio=True)
    with RaplMeter(root=tree.root, interval_s=SLOW) as m:
        assert m.domains == ["package-0"]
        tree.advance("mmio:package-0", joules=2)
        assert m.read().total == pytest.approx(2)


def test_joules_count_from_creation_not_from_boot(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path, sockets=1, start_uj=123_456_789)
    with RaplMeter(root=tree.root, interval_s=SLOW) as m:
        assert m.read().total == 0
        tree.advance("package-0", joules=1.5)
        assert m.read().joules["package-0"] == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (10, 25, 15),
        (90, 5, 5 + 101 - 90),  # wrapped once: the modulus is max + 1
        (7, 7, 0),  # the same value again: no energy, not a whole wrap
        (100, 0, 1),  # from exactly the maximum to 0 is one step
        (0, 100, 100),  # up to exactly the maximum
        (100, 100, 0),
    ],
)
def test_counter_delta(before: int, after: int, expected: int) -> None:
    assert counter_delta(before, after, 100) == expected


def test_wraparound_is_added_once(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path, sockets=1, max_range_uj=10_000_000, start_uj=9_000_000)
    with RaplMeter(root=tree.root, interval_s=SLOW, max_power_w=1e-3) as m:
        tree.advance("package-0", joules=3)  # 9 J -> 12 J wraps to 1.999999 J
        assert tree.get("package-0") < 9_000_000
        assert m.read().joules["package-0"] == pytest.approx(3)
        tree.advance("package-0", joules=9.5)  # another wrap
        assert m.read().joules["package-0"] == pytest.approx(12.5)


def test_exact_boundaries(tmp_path: Path) -> None:
    top = 10_000_000
    tree = make_powercap_tree(tmp_path, sockets=1, max_range_uj=top, with_core=False,
                              with_dram=False, start_uj=top - 5)
    with RaplMeter(root=tree.root, interval_s=SLOW, max_power_w=1e-3) as m:
        tree.set("package-0", top)  # up to exactly the maximum
        assert m.read().joules["package-0"] * 1e6 == pytest.approx(5)
        assert m.read().joules["package-0"] * 1e6 == pytest.approx(5)  # unchanged: no wrap
        tree.set("package-0", 0)  # maximum -> 0: one step
        assert m.read().joules["package-0"] * 1e6 == pytest.approx(6)
        tree.set("package-0", 0)
        assert m.read().joules["package-0"] * 1e6 == pytest.approx(6)


def test_sampler_interval_never_allows_two_wraps(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path, sockets=1, max_range_uj=1_000_000_000)  # 1 kJ
    with RaplMeter(root=tree.root, interval_s=5.0) as m:
        # 1 kJ at the worst-case 1000 W wraps in 1 s: sample at least twice a second
        assert m.interval_s == pytest.approx((1_000_000_001 / (WORST_CASE_W * 1e6)) / 2)
    with RaplMeter(root=tree.root, interval_s=0.2) as m:
        assert m.interval_s == 0.2  # a shorter interval than the bound is kept


def test_constraint_max_power_raises_the_bound(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path, sockets=1, max_range_uj=4_000_000_000,
                              max_power_uw=1_000_000_000)  # a 1000 W part: assume 2000 W
    with RaplMeter(root=tree.root, interval_s=5.0) as m:
        assert m.interval_s == pytest.approx((4_000_000_001 / 2000e6) / 2)


def test_background_sampler_counts_wraps_between_reads(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path, sockets=1, with_core=False, with_dram=False,
                              max_range_uj=1_000_000)
    with RaplMeter(root=tree.root, interval_s=SLOW, max_power_w=1e-3) as m:
        for _ in range(5):  # 5 × 0.7 J on a 1 J counter: each step wraps at most once
            tree.advance("package-0", joules=0.7)
            m._sample()  # what the sampler thread does between two reads
        assert m.read().total == pytest.approx(3.5)


def test_sampler_error_is_raised_on_next_read(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path, sockets=1, with_core=False, with_dram=False)
    m = RaplMeter(root=tree.root, interval_s=0.01)
    try:
        tree.break_energy("package-0", "directory")
        deadline = time.monotonic() + 10
        while m._sampler.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(SamplerFailed, match="energy_uj"):
            m.read()
    finally:
        m.close()


def test_permission_denied_says_how_to_grant_access(powercap: FakePowercap) -> None:
    def root_only(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return read_text(path)

    with pytest.raises(MeterUnavailable) as err:
        RaplMeter(root=powercap.root, reader=root_only)
    reason = err.value.reason
    assert "permission denied" in reason
    assert 'SUBSYSTEM=="powercap"' in reason and "chgrp -R powercap" in reason
    assert "mode class/powercap/intel-rapl:0/energy_uj = 0440" in reason
    assert "usermod -aG powercap" in reason
    assert "chmod 777" not in reason and "run as root" not in reason.lower()
    assert RAPL_ACCESS_HELP in reason
    probe = RaplMeter.probe(root=powercap.root, reader=root_only)
    assert not probe.available and RAPL_ACCESS_HELP in probe.reason


@pytest.mark.parametrize("how", ["directory", "dangling", "garbage"])
def test_unreadable_counter_is_unavailable_with_the_path(powercap: FakePowercap,
                                                         how: str) -> None:
    powercap.break_energy("dram-1", how)
    with pytest.raises(MeterUnavailable, match="dram|intel-rapl:1:1"):
        RaplMeter(root=powercap.root)
    probe = RaplMeter.probe(root=powercap.root)
    assert not probe.available and "energy_uj" in probe.reason
    assert "permission denied" not in probe.reason


def test_missing_tree_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(MeterUnavailable, match="no powercap tree"):
        RaplMeter(root=tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    probe = RaplMeter.probe(root=empty)
    assert not probe.available and "no intel-rapl zones" in probe.reason


def test_root_from_environment(powercap: FakePowercap, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAYJOULE_POWERCAP_ROOT", str(powercap.root))
    probe = RaplMeter.probe()
    assert probe.available and "package-1" in probe.domains
    with RaplMeter() as m:
        assert m.root == powercap.root


def test_driver_power_is_measured(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path, sockets=1)
    with RaplMeter(root=tree.root, interval_s=0.05) as m:
        r0 = m.read()
        with FakePowercapDriver(tree, watts={"package-0": 20.0, "dram-0": 2.0}) as drv:
            time.sleep(0.3)
        r1 = m.read()
    assert r1.total - r0.total == pytest.approx(drv.added_j("package-0") + drv.added_j("dram-0"))
    assert drv.added_j("package-0") == pytest.approx(10 * drv.added_j("dram-0"), rel=0.01)


def test_driver_reopens_a_tree_from_its_root(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path, sockets=1)
    reopened = FakePowercap.open(tree.root)
    assert reopened.domains == tree.domains
    reopened.advance("package-0", joules=1)
    assert tree.get("package-0") == 1_000_000
