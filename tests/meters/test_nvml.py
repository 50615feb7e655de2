"""NvmlMeter with the NVML library replaced by a fake module."""

from __future__ import annotations

import sys
import types

import pytest

from meters import MeterError, MeterUnavailable, NvmlMeter
from meters.testing import MeterContract

NOT_SUPPORTED = 3
DRIVER_NOT_LOADED = 9


class FakeNVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


def fake_nvml(energy_mj: list[float | None], power_mw: list[float] | None = None,
              init_error: int | None = None) -> types.ModuleType:
    """A pynvml look-alike: GPU i has ``energy_mj[i]`` (None: counter not supported)."""
    nv = types.ModuleType("fake_pynvml")
    nv.NVMLError = FakeNVMLError
    nv.NVML_ERROR_NOT_SUPPORTED = NOT_SUPPORTED
    nv.energy_mj = energy_mj
    nv.power_mw = power_mw or [0.0] * len(energy_mj)
    nv.inits = 0

    def init() -> None:
        if init_error is not None:
            raise FakeNVMLError(init_error)
        nv.inits += 1

    def shutdown() -> None:
        nv.inits -= 1

    def total_energy(handle: int) -> float:
        if nv.energy_mj[handle] is None:
            raise FakeNVMLError(NOT_SUPPORTED)
        return nv.energy_mj[handle]

    nv.nvmlInit = init
    nv.nvmlShutdown = shutdown
    nv.nvmlDeviceGetCount = lambda: len(nv.energy_mj)
    nv.nvmlDeviceGetHandleByIndex = lambda i: i
    nv.nvmlDeviceGetTotalEnergyConsumption = total_energy
    nv.nvmlDeviceGetPowerUsage = lambda h: nv.power_mw[h]
    return nv


class TestNvmlEnergyContract(MeterContract):
    @pytest.fixture
    def make_meter(self):
        self.nv = fake_nvml([5_000_000.0, 7_000_000.0])
        return lambda: NvmlMeter(nvml=self.nv)

    def advance(self, meter: NvmlMeter) -> None:
        self.nv.energy_mj = [e + 1500.0 for e in self.nv.energy_mj]


class TestNvmlPowerContract(MeterContract):
    @pytest.fixture
    def make_meter(self):
        nv = fake_nvml([None], power_mw=[70_000.0])
        return lambda: NvmlMeter(nvml=nv, power_interval_s=0.01)


def test_energy_counter_since_creation() -> None:
    nv = fake_nvml([5_000_000.0, 9_000_000.0])
    with NvmlMeter(nvml=nv) as m:
        assert m.domains == ["gpu-0", "gpu-1"] and m.source == "nvml"
        assert m.read().total == 0
        nv.energy_mj = [5_012_500.0, 9_000_250.0]
        r = m.read()
    assert r.joules == {"gpu-0": pytest.approx(12.5), "gpu-1": pytest.approx(0.25)}
    assert r.total == pytest.approx(12.75)
    assert r.kind == "measured" and r.source == "nvml"
    assert nv.inits == 0, "close() shuts NVML down"


def test_basis_lists_the_devices_and_how_each_is_read() -> None:
    nv = fake_nvml([None, 1000.0], power_mw=[50_000.0, 0.0])
    nv.nvmlDeviceGetName = lambda h: [b"NVIDIA H100 80GB HBM3", "NVIDIA L4"][h]
    with NvmlMeter(nvml=nv, power_interval_s=3600) as m:
        basis = m.basis
    assert basis["meter"] == "nvml" and basis["domains"] == ["gpu-0", "gpu-1"]
    assert basis["devices"] == [
        {"index": 0, "domain": "gpu-0", "name": "NVIDIA H100 80GB HBM3",
         "method": "power x time"},
        {"index": 1, "domain": "gpu-1", "name": "NVIDIA L4", "method": "energy counter"},
    ]
    nv.nvmlDeviceGetName = lambda h: (_ for _ in ()).throw(FakeNVMLError(NOT_SUPPORTED))
    with NvmlMeter(nvml=nv, power_interval_s=3600) as m:
        assert m.basis["devices"][0]["name"] == "unknown (NVML error 3)"


def test_chosen_indices() -> None:
    nv = fake_nvml([1.0, 2.0, 3.0])
    with NvmlMeter(indices=[2], nvml=nv) as m:
        assert m.domains == ["gpu-2"]
        nv.energy_mj[2] = 2003.0
        assert m.read().joules == {"gpu-2": pytest.approx(2.0)}
    with pytest.raises(MeterError, match="not in 0..2"):
        NvmlMeter(indices=[5], nvml=nv)
    assert nv.inits == 0


def test_power_times_time_where_the_counter_is_not_supported() -> None:
    nv = fake_nvml([None, 1000.0], power_mw=[100_000.0, 0.0])  # GPU 0: 100 W, no counter
    with NvmlMeter(nvml=nv, power_interval_s=3600) as m:
        assert m.power_integrated == ["gpu-0"]
        assert m.source == "nvml(power×time)"
        r1 = m.read()
        r2 = m.read()
        assert r2.source == "nvml(power×time)" and r2.kind == "measured"
        assert r2.joules["gpu-0"] - r1.joules["gpu-0"] == pytest.approx(100 * (r2.t - r1.t))
        nv.power_mw[0] = 300_000.0  # trapezoid: the mean of 100 W and 300 W
        r3 = m.read()
        assert r3.joules["gpu-0"] - r2.joules["gpu-0"] == pytest.approx(200 * (r3.t - r2.t))


def test_unavailable_without_driver_gpus_or_library(monkeypatch: pytest.MonkeyPatch) -> None:
    p = NvmlMeter.probe(nvml=fake_nvml([1.0], init_error=DRIVER_NOT_LOADED))
    assert not p.available and "no NVIDIA driver" in p.reason
    with pytest.raises(MeterUnavailable, match="no NVIDIA GPU"):
        NvmlMeter(nvml=fake_nvml([]))
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    p = NvmlMeter.probe()
    assert not p.available and "pip install nvidia-ml-py" in p.reason


def test_probe_lists_gpus_and_shuts_down() -> None:
    nv = fake_nvml([1.0, 2.0])
    p = NvmlMeter.probe(nvml=nv)
    assert p.available and p.domains == ["gpu-0", "gpu-1"] and p.kind == "measured"
    assert nv.inits == 0


def test_unexpected_nvml_error_is_unavailable() -> None:
    nv = fake_nvml([1.0])
    nv.nvmlDeviceGetTotalEnergyConsumption = lambda h: (_ for _ in ()).throw(FakeNVMLError(999))
    with pytest.raises(MeterUnavailable, match="cannot read GPU energy"):
        NvmlMeter(nvml=nv)
    assert nv.inits == 0
