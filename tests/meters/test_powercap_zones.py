"""Zone discovery: hex ids, names not ids, mirrored or own die counters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meters import MeterError, RaplMeter, discover_zones, scan_powercap
from tests.meters.fake_cpuinfo import render_cpuinfo
from tests.meters.fake_powercap import make_powercap_tree

SLOW = 3600.0  # the background sampler never runs during a test


@pytest.fixture
def amd_cpuinfo(tmp_path: Path) -> Path:
    """A 2-socket Zen 4 server (the kind that showed one zone per CCD)."""
    path = tmp_path / "cpuinfo-amd"
    path.write_text(render_cpuinfo("AMD EPYC 9654 96-Core Processor", vendor="AuthenticAMD",
                                   sockets=2, cores_per_socket=2, threads_per_core=2,
                                   family=25, model=17))
    return path


@pytest.fixture
def intel_cpuinfo(tmp_path: Path) -> Path:
    """Cascade Lake-AP: two dies per package, each with its own package counter."""
    path = tmp_path / "cpuinfo-intel"
    path.write_text(render_cpuinfo("Intel(R) Xeon(R) Platinum 9282 CPU @ 2.60GHz", sockets=2,
                                   cores_per_socket=2, threads_per_core=2))
    return path


# -- hexadecimal ids ---------------------------------------------------------------------------
def test_sixteen_sockets_have_hex_ids_and_are_named_from_their_name_file(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path, sockets=16)
    assert tree.zone("package-10").zone_id == "intel-rapl:a"
    assert tree.zone("dram-15").zone_id == "intel-rapl:f:1"
    zones = discover_zones(tree.root)
    assert len(zones) == 48
    by_domain = {z.domain: z for z in zones}
    assert by_domain["package-10"].zone_id == "intel-rapl:a"
    assert by_domain["core-10"].zone_id == "intel-rapl:a:0"
    assert by_domain["dram-15"].zone_id == "intel-rapl:f:1"
    packages = [z.domain for z in zones if z.name.startswith("package")]
    assert packages == [f"package-{s}" for s in range(16)], "sorted by socket, 10 after 9"
    assert [z.domain for z in zones[:6]] == ["package-0", "core-0", "dram-0",
                                             "package-1", "core-1", "dram-1"]


def test_hex_zones_are_read_and_counted(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path, sockets=12)
    with RaplMeter(root=tree.root, interval_s=SLOW) as m:
        assert len(m.total_domains) == 24  # 12 packages + 12 dram
        for s in range(12):
            tree.advance(f"package-{s}", joules=s + 1)
        tree.advance("core-11", joules=5)  # inside package-11
        tree.advance("dram-11", joules=0.5)
        r = m.read()
    assert r.joules["package-11"] == pytest.approx(12)
    assert r.joules["core-11"] == pytest.approx(5)
    assert r.total == pytest.approx(sum(range(1, 13)) + 0.5)


def test_names_not_directory_ids_decide_the_socket(tmp_path: Path) -> None:
    # The kernel registered socket 2 first, then 0, then 1 (CPU hotplug order).
    tree = make_powercap_tree(tmp_path, sockets=3, order=[2, 0, 1])
    assert tree.zone("package-2").zone_id == "intel-rapl:0"
    assert tree.zone("core-0").zone_id == "intel-rapl:1:0"
    zones = discover_zones(tree.root)
    assert [(z.domain, z.zone_id) for z in zones if z.name.startswith("package")] == [
        ("package-0", "intel-rapl:1"), ("package-1", "intel-rapl:2"),
        ("package-2", "intel-rapl:0")]
    with RaplMeter(root=tree.root, interval_s=SLOW) as m:
        tree.advance("package-2", joules=7)
        tree.advance("dram-0", joules=1)
        r = m.read()
    assert r.joules["package-2"] == pytest.approx(7) and r.joules["package-0"] == 0
    assert r.joules["dram-0"] == pytest.approx(1)


def test_another_rapl_control_type_is_found(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path, sockets=1, control="amd-rapl")
    zones = discover_zones(tree.root)
    assert [z.zone_id for z in zones] == ["amd-rapl:0", "amd-rapl:0:0", "amd-rapl:0:1"]
    assert [z.domain for z in zones] == ["package-0", "core-0", "dram-0"]


def test_mmio_duplicate_of_a_hex_package_is_read_once(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path, sockets=11, with_mmio=True)
    scan = scan_powercap(tree.root)
    assert [z.domain for z in scan.zones].count("package-0") == 1
    assert "intel-rapl-mmio:0" in scan.skipped
    assert "read through intel-rapl:0" in scan.skipped["intel-rapl-mmio:0"]


# -- die zones ---------------------------------------------------------------------------------
def amd_tree(tmp_path: Path):
    """2 sockets × 8 CCDs on an affected kernel: 16 die zones intel-rapl:0 … intel-rapl:f, one
    per-socket counter, and a core zone per CCD (its lead CPU's own core counter)."""
    return make_powercap_tree(tmp_path / "pc", sockets=2, dies=8, with_dram=False,
                              mirrored_dies=True, start_uj=5_000_000)


def test_amd_die_zones_mirror_one_counter_and_count_once(tmp_path: Path,
                                                          amd_cpuinfo: Path) -> None:
    tree = amd_tree(tmp_path)
    assert tree.zone("package-1-die-7").zone_id == "intel-rapl:f"
    with RaplMeter(root=tree.root, interval_s=SLOW, cpuinfo=amd_cpuinfo) as m:
        assert m.total_domains == ("package-0", "package-1")
        assert [d for d in m.domains if d.startswith("package")] == ["package-0", "package-1"]
        assert "core-0-die-0" in m.domains and "core-1-die-7" in m.domains
        tree.advance("package-0-die-3", joules=10)  # the socket's one counter moves
        tree.advance("package-1-die-0", joules=4)
        tree.advance("core-0-die-5", joules=1)  # one CCD's lead core: informational
        r = m.read()
        basis = m.basis
    assert r.joules["package-0"] == pytest.approx(10)
    assert r.total == pytest.approx(14), "not 8 × the package energy"
    assert r.joules["core-0-die-5"] == pytest.approx(1)
    rule = basis["die_zones"]
    assert (rule["scope"], rule["decided_by"], rule["vendor"]) == (
        "per-package", "vendor", "AuthenticAMD")
    assert "rapl_msrs_are_pkg_scope" in rule["reason"]
    assert rule["mirrors"]["package-0"] == [f"intel-rapl:{k:x}" for k in range(1, 8)]
    assert rule["mirrors"]["package-1"] == [f"intel-rapl:{k:x}" for k in range(9, 16)]
    assert basis["not_read"]["intel-rapl:f"] == "package-1-die-7 mirrors the counter read as " \
        "package-1"
    assert json.loads(json.dumps(basis)) == basis


def test_mirror_zones_are_not_read_at_all(tmp_path: Path, amd_cpuinfo: Path) -> None:
    tree = amd_tree(tmp_path)
    tree.break_energy("package-0-die-4", "garbage")
    with RaplMeter(root=tree.root, interval_s=SLOW, cpuinfo=amd_cpuinfo) as m:
        assert m.read().total == 0


def test_intel_die_zones_have_their_own_counters_and_are_summed(tmp_path: Path,
                                                               intel_cpuinfo: Path) -> None:
    tree = make_powercap_tree(tmp_path / "pc", sockets=2, dies=2)
    with RaplMeter(root=tree.root, interval_s=SLOW, cpuinfo=intel_cpuinfo) as m:
        assert m.total_domains == ("package-0-die-0", "dram-0-die-0", "package-0-die-1",
                                   "dram-0-die-1", "package-1-die-0", "dram-1-die-0",
                                   "package-1-die-1", "dram-1-die-1")
        for k, domain in enumerate(["package-0-die-0", "package-0-die-1", "package-1-die-0",
                                    "package-1-die-1"]):
            tree.advance(domain, joules=k + 1)
        tree.advance("dram-0-die-1", joules=2)
        tree.advance("core-1-die-1", joules=3)  # inside its die
        r = m.read()
        rule = m.basis["die_zones"]
    assert r.total == pytest.approx(1 + 2 + 3 + 4 + 2)
    assert (rule["scope"], rule["decided_by"], rule["mirrors"]) == ("per-die", "vendor", {})


@pytest.mark.parametrize("mirrored", [True, False])
def test_unknown_vendor_compares_the_counters(tmp_path: Path, mirrored: bool) -> None:
    tree = make_powercap_tree(tmp_path / "pc", sockets=1, dies=4, with_dram=False,
                              mirrored_dies=mirrored, start_uj=1_000_000)
    if not mirrored:  # independent counters hold what each die used since boot
        for d in range(4):
            tree.set(f"package-0-die-{d}", 1_000_000 + d * 7_777_777_777)
    scan = scan_powercap(tree.root, cpuinfo=tmp_path / "no-cpuinfo")
    assert scan.die_rule.decided_by == "counters"
    assert "cpuinfo unreadable" in scan.die_rule.reason
    packages = [z.domain for z in scan.zones if z.name.startswith("package")]
    if mirrored:
        assert scan.die_rule.scope == "per-package" and packages == ["package-0"]
    else:
        assert scan.die_rule.scope == "per-die"
        assert packages == [f"package-0-die-{d}" for d in range(4)]


def test_die_counters_argument_wins_over_the_vendor(tmp_path: Path, amd_cpuinfo: Path) -> None:
    tree = amd_tree(tmp_path)
    scan = scan_powercap(tree.root, cpuinfo=amd_cpuinfo, die_counters="per-die")
    assert scan.die_rule.decided_by == "argument"
    assert sum(z.in_total for z in scan.zones) == 16
    with pytest.raises(MeterError, match="die_counters must be one of"):
        scan_powercap(tree.root, die_counters="sometimes")
    probe = RaplMeter.probe(root=tree.root, die_counters="sometimes")
    assert not probe.available and "die_counters" in probe.reason


def test_single_die_packages_need_no_rule(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path, sockets=2)
    rule = scan_powercap(tree.root, cpuinfo=tmp_path / "never-read").die_rule
    assert (rule.scope, rule.decided_by) == (None, "no die zones")


def test_a_subzone_without_its_package_is_reported_not_read(tmp_path: Path) -> None:
    tree = make_powercap_tree(tmp_path, sockets=1)
    stray = tree.base / "stray" / "intel-rapl:5:0"
    stray.mkdir(parents=True)
    for name, value in (("name", "dram"), ("energy_uj", "0"), ("max_energy_range_uj", "100")):
        (stray / name).write_text(value + "\n")
    (tree.root / "intel-rapl:5:0").symlink_to(stray)
    scan = scan_powercap(tree.root)
    assert [z.zone_id for z in scan.zones] == ["intel-rapl:0", "intel-rapl:0:0", "intel-rapl:0:1"]
    assert scan.skipped == {"intel-rapl:5:0": "its parent zone intel-rapl:5 is not in the tree"}
