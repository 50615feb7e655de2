"""detect(): choice order, reasons, plug-ins; get_meter(); CompositeMeter; Reading."""

from __future__ import annotations

import importlib.metadata
import threading
from pathlib import Path
from typing import Any

import pytest

import meters
from meters import (
    CompositeMeter,
    Detection,
    Meter,
    MeterError,
    Probe,
    RaplMeter,
    Reading,
    TdpMeter,
    detect,
    get_meter,
)
from meters.testing import MeterContract
from tests.meters.fake_powercap import FakePowercap
from tests.meters.plugin_example import ConstantMeter


def fake_class(name: str, available: bool, kind: str = "measured",
               domains: list[str] | None = None) -> type[Meter]:
    """A meter class whose probe says ``available`` (never constructed)."""

    def _probe(cls: type[Meter], **options: Any) -> Probe:
        if available:
            return Probe(True, None, kind, domains or [name])
        return Probe(False, f"{name} is not here", kind, [])

    return type(f"Fake{name}", (ConstantMeter,),
                {"name": name, "kind": kind, "_probe": classmethod(_probe)})


def classes(**avail: bool) -> dict[str, type[Meter]]:
    kinds = {"tdp": "modelled"}
    return {n: fake_class(n, a, kinds.get(n, "measured")) for n, a in avail.items()}


def test_public_api() -> None:
    for name in ["Meter", "Reading", "MeterUnavailable", "MeterError", "RaplMeter", "PerfMeter",
                 "TdpMeter", "NvmlMeter", "detect", "Probe", "MeterInfo", "Detection",
                 "get_meter", "CompositeMeter"]:
        assert name in meters.__all__ and hasattr(meters, name)
    assert issubclass(meters.MeterUnavailable, meters.MeterError)


@pytest.mark.parametrize(
    ("avail", "chosen"),
    [
        ({"rapl": True, "perf": True, "tdp": True, "nvml": True}, ["rapl", "nvml"]),
        ({"rapl": False, "perf": True, "tdp": True, "nvml": False}, ["perf"]),
        ({"rapl": False, "perf": False, "tdp": True, "nvml": True}, ["tdp", "nvml"]),
        ({"rapl": False, "perf": False, "tdp": False, "nvml": False}, []),
    ],
)
def test_best_cpu_meter_plus_gpu(avail: dict[str, bool], chosen: list[str]) -> None:
    d = detect(classes=classes(**avail), entry_points=False)
    assert d.chosen == chosen
    assert [m.name for m in d.meters] == ["rapl", "perf", "tdp", "nvml"]
    for name, ok in avail.items():
        if not ok:
            assert d.skipped[name] == f"{name} is not here"
        elif name not in chosen:
            assert "better CPU meter" in d.skipped[name]
    assert set(d.skipped) | set(chosen) == set(avail)


def test_include_gpu_false_does_not_probe_nvml() -> None:
    table = classes(rapl=False, perf=False, tdp=True, nvml=True)
    d = detect(include_gpu=False, classes=table, entry_points=False)
    assert d.chosen == ["tdp"]
    assert "include_gpu=False" in d.skipped["nvml"]
    assert not d.info("nvml").available


def test_detect_on_this_host_with_a_fake_tree(powercap: FakePowercap) -> None:
    d = detect(include_gpu=False, options={"rapl": {"root": powercap.root}})
    assert d.chosen == ["rapl"]
    info = d.info("rapl")
    assert info.available and info.kind == "measured" and "package-0" in info.domains
    assert d.info("tdp").available and d.info("tdp").kind == "modelled"
    built = d.create()
    try:
        assert [type(m) for m in built] == [RaplMeter]
        assert built[0].root == powercap.root
    finally:
        for m in built:
            m.close()


def test_detect_without_counters_chooses_the_model(tmp_path: Path) -> None:
    d = detect(include_gpu=False, options={"rapl": {"root": tmp_path / "none"},
                                           "perf": {"perf": str(tmp_path / "no-perf")}})
    assert d.chosen == ["tdp"]
    assert "no powercap tree" in d.skipped["rapl"] and "perf not found" in d.skipped["perf"]
    with d.create_composite() as m:
        assert m.kind == "modelled" and m.domains == ["cpu"]
    payload = d.to_dict()
    assert payload["chosen"] == ["tdp"]
    assert {"name", "available", "kind", "domains", "reason"} <= set(payload["meters"][0])


def fake_entry_points(*specs: tuple[str, str]):
    eps = [importlib.metadata.EntryPoint(name, value, "rayjoule.meters") for name, value in specs]

    def entry_points(**kw: Any):
        assert kw == {"group": "rayjoule.meters"}
        return eps

    return entry_points


def test_plugins_are_listed_and_broken_ones_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points(
        ("constant", "tests.meters.plugin_example:ConstantMeter"),
        ("ghost", "no_such_module_anywhere:Meter"),
        ("wrong", "tests.meters.plugin_example:NotAMeter"),
        ("tdp", "tests.meters.plugin_example:ConstantMeter"),
    ))
    d = detect(classes=classes(rapl=False, perf=False, tdp=True, nvml=False))
    assert d.chosen == ["tdp"]
    constant = d.info("constant")
    assert constant.available and constant.origin == "entry point"
    assert "not chosen automatically" in d.skipped["constant"]
    ghost = d.info("ghost")
    assert not ghost.available and "ModuleNotFoundError" in ghost.reason
    assert "not a meters.Meter subclass" in d.info("wrong").reason
    clash = [m for m in d.meters if m.name.startswith("tdp@")]
    assert clash and "taken by a built-in" in clash[0].reason
    assert d.info("tdp").origin == "builtin"

    m = get_meter("constant", watts=2.0)
    try:
        assert isinstance(m, ConstantMeter)
    finally:
        m.close()


def test_entry_point_listing_failure_does_not_break_detect(monkeypatch) -> None:
    def broken(**kw: Any):
        raise RuntimeError("bad metadata")

    monkeypatch.setattr(importlib.metadata, "entry_points", broken)
    assert detect(classes=classes(tdp=True)).chosen == ["tdp"]


def test_get_meter_by_name() -> None:
    with get_meter("tdp", scope="host", vcpus=2) as m:
        assert isinstance(m, TdpMeter) and m.name == "tdp"
    with pytest.raises(MeterError, match="unknown meter 'joulemeter'.*nvml.*rapl"):
        get_meter("joulemeter")


def test_create_closes_what_it_built_when_one_fails(powercap: FakePowercap) -> None:
    def samplers() -> int:
        return sum(t.name == "rayjoule-rapl-sampler" for t in threading.enumerate())

    before = samplers()
    d = Detection(chosen=["rapl", "nope"], meters=[])
    with pytest.raises(MeterError, match="unknown meter"):
        d.create({"rapl": {"root": powercap.root}})
    assert samplers() == before, "the rapl meter built first was closed"


class TestConstantPluginContract(MeterContract):
    @pytest.fixture
    def make_meter(self):
        return lambda: ConstantMeter(watts=3.0)


class TestCompositeContract(MeterContract):
    @pytest.fixture
    def make_meter(self, powercap: FakePowercap):
        return lambda: CompositeMeter([RaplMeter(root=powercap.root), ConstantMeter()])


def test_composite_sums_totals_and_is_modelled_if_any_part_is(powercap: FakePowercap) -> None:
    with CompositeMeter([RaplMeter(root=powercap.root, interval_s=3600),
                         ConstantMeter(watts=0.0)]) as m:
        assert m.kind == "modelled" and m.source == "rapl+constant"
        powercap.advance("package-0", joules=4)
        powercap.advance("core-0", joules=3)
        powercap.advance("dram-1", joules=1)
        r = m.read()
    assert r.total == pytest.approx(5)
    assert r.joules["core-0"] == pytest.approx(3) and "board" in r.joules
    with CompositeMeter([RaplMeter(root=powercap.root)]) as m:
        assert m.kind == "measured"


def test_composite_basis_holds_each_parts_basis(powercap: FakePowercap) -> None:
    with CompositeMeter([RaplMeter(root=powercap.root), ConstantMeter()]) as m:
        basis = m.basis
    assert basis["meter"] == "composite" and basis["kind"] == "modelled"
    assert basis["source"] == "rapl+constant"
    assert [p["meter"] for p in basis["parts"]] == ["rapl", "constant"]
    assert basis["parts"][0]["total_domains"] == ["package-0", "dram-0", "package-1", "dram-1"]
    assert basis["parts"][1] == {"meter": "constant", "kind": "modelled", "domains": ["board"]}


def test_composite_prefixes_or_refuses_clashing_domains() -> None:
    a, b = ConstantMeter(), ConstantMeter()
    with pytest.raises(MeterError, match="prefix=True"):
        CompositeMeter([a, b])
    with CompositeMeter([ConstantMeter(), TdpMeter()], prefix=True) as m:
        assert m.domains == ["constant/board", "tdp/cpu"]
        assert set(m.read().joules) == {"constant/board", "tdp/cpu"}


def test_reading_rules() -> None:
    r0 = Reading({"package-0": 10.0, "core-0": 6.0}, t=1.0, kind="measured", source="rapl",
                 total_domains=("package-0",))
    r1 = Reading({"package-0": 30.0, "core-0": 16.0}, t=3.0, kind="measured", source="rapl",
                 total_domains=("package-0",))
    assert r1.total == 30.0 and r1.total_j == 30.0
    assert r1.watts_since(r0) == {"package-0": 10.0, "core-0": 5.0}
    assert r1.total_watts_since(r0) == 10.0
    assert r1.delta_j(r0) == {"package-0": 20.0, "core-0": 10.0}
    assert Reading.from_dict(r1.to_dict()) == r1
    assert r1.to_dict()["total_j"] == 30.0
    with pytest.raises(ValueError, match="time order"):
        r0.watts_since(r1)
    with pytest.raises(ValueError, match="kind"):
        Reading({"x": 1.0}, t=0, kind="guessed", source="x")
    with pytest.raises(ValueError, match="total_domains"):
        Reading({"x": 1.0}, t=0, kind="measured", source="x", total_domains=("y",))
    j = {"cpu": 1.0}
    r = Reading(j, t=0, kind="modelled", source="tdp")
    j["cpu"] = 99.0
    assert r.joules["cpu"] == 1.0, "a reading does not share the caller's dict"


def test_probe_of_a_crashing_probe_is_a_reason() -> None:
    class Crashing(ConstantMeter):
        name = "crashing"

        @classmethod
        def _probe(cls, **options: Any) -> Probe:
            raise OSError("boom")

    p = Crashing.probe()
    assert not p.available and "boom" in p.reason
