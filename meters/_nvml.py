"""NVIDIA GPU energy through NVML (the ``nvidia-ml-py`` package, imported lazily).

Why lazily: ``import meters`` must work on hosts without the package or a
driver; only constructing or probing this meter touches NVML.

Per GPU ``i`` the domain ``gpu-i`` uses the driver's energy counter,
``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded, Volta
and newer), minus its value when the meter was created. Older GPUs answer
``NVML_ERROR_NOT_SUPPORTED``; for those the meter integrates
``nvmlDeviceGetPowerUsage`` (mW) over time with the trapezoid rule in a
background sampler. Both are the GPU's own sensors, so ``kind`` is
``"measured"``; the reading's ``source`` says ``nvml(power×time)`` when any
GPU is integrated from power samples, so the coarser method stays visible.
"""

from __future__ import annotations

import importlib
import threading
import time
from types import ModuleType
from typing import Any

from meters._base import MEASURED, Meter, MeterError, MeterUnavailable, Probe, Reading
from meters._sampler import Sampler

DEFAULT_POWER_INTERVAL_S = 0.1
_NOT_SUPPORTED = 3  # NVML_ERROR_NOT_SUPPORTED, for fakes that do not define it


def _load(nvml: ModuleType | None) -> ModuleType:
    if nvml is not None:
        return nvml
    try:
        return importlib.import_module("pynvml")
    except ImportError as exc:
        raise MeterUnavailable(
            "the NVML Python bindings are not installed: `pip install nvidia-ml-py` "
            "(or `pip install rayjoule[gpu]`)"
        ) from exc


def _init(nvml: ModuleType) -> int:
    """nvmlInit and the GPU count, or MeterUnavailable (after nvmlShutdown)."""
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError subclasses: library missing, driver not loaded...
        raise MeterUnavailable(
            f"NVML could not start ({exc}): no NVIDIA driver on this host "
            f"(`nvidia-smi` should work first)"
        ) from exc
    try:
        count = int(nvml.nvmlDeviceGetCount())
    except Exception as exc:
        nvml.nvmlShutdown()
        raise MeterUnavailable(f"NVML could not count GPUs: {exc}") from exc
    if count == 0:
        nvml.nvmlShutdown()
        raise MeterUnavailable("NVML found no NVIDIA GPU on this host")
    return count


def _not_supported(nvml: ModuleType, exc: BaseException) -> bool:
    code = getattr(nvml, "NVML_ERROR_NOT_SUPPORTED", _NOT_SUPPORTED)
    return getattr(exc, "value", None) == code


class NvmlMeter(Meter):
    """Measured GPU energy per NVIDIA GPU (domains ``gpu-0``, ``gpu-1``, ...)."""

    name = "nvml"
    kind = MEASURED

    def __init__(
        self,
        indices: list[int] | None = None,
        *,
        nvml: ModuleType | None = None,
        power_interval_s: float = DEFAULT_POWER_INTERVAL_S,
    ) -> None:
        """``indices``: which GPUs (default all). ``nvml``: the pynvml module (tests pass a
        fake). ``power_interval_s``: sampling interval for GPUs without an energy counter.
        """
        super().__init__()
        if not power_interval_s > 0:
            raise MeterError(f"power_interval_s must be > 0, got {power_interval_s!r}")
        self._nvml = nv = _load(nvml)
        count = _init(nv)
        chosen = list(range(count)) if indices is None else [int(i) for i in indices]
        bad = [i for i in chosen if not 0 <= i < count]
        if bad or not chosen:
            nv.nvmlShutdown()
            raise MeterError(f"GPU indices {bad or chosen} not in 0..{count - 1}")
        self.indices = chosen
        self.domains = [f"gpu-{i}" for i in chosen]
        self._lock = threading.Lock()
        self._handles: list[Any] = []
        self._base_mj: list[float | None] = []  # None: integrate power instead
        self._power_j = [0.0] * len(chosen)
        self._last_w: list[float] = [0.0] * len(chosen)
        try:
            for i in chosen:
                handle = nv.nvmlDeviceGetHandleByIndex(i)
                self._handles.append(handle)
                try:
                    self._base_mj.append(float(nv.nvmlDeviceGetTotalEnergyConsumption(handle)))
                except Exception as exc:
                    if not _not_supported(nv, exc):
                        raise
                    self._base_mj.append(None)
            self._t_last = time.monotonic()
            for k, base in enumerate(self._base_mj):
                if base is None:
                    self._last_w[k] = self._power_w(k)
        except MeterError:
            nv.nvmlShutdown()
            raise
        except Exception as exc:
            nv.nvmlShutdown()
            raise MeterUnavailable(f"NVML cannot read GPU energy or power: {exc}") from exc
        self._names = [self._device_name(h) for h in self._handles]
        self.power_integrated = [self.domains[k] for k, b in enumerate(self._base_mj) if b is None]
        self.source = "nvml(power×time)" if self.power_integrated else "nvml"
        self._sampler: Sampler | None = None
        if self.power_integrated:
            self._sampler = Sampler(self._sample_power, power_interval_s, name="nvml-power")
            self._sampler.start()

    def _device_name(self, handle: Any) -> str | None:
        """The GPU's product name for the basis (None when the bindings cannot tell)."""
        getter = getattr(self._nvml, "nvmlDeviceGetName", None)
        if getter is None:
            return None
        try:
            name = getter(handle)
        except Exception as exc:  # a cosmetic field: say why it is missing, keep metering
            return f"unknown ({exc})"
        return name.decode() if isinstance(name, bytes) else str(name)

    def _basis(self) -> dict[str, Any]:
        return {"devices": [
            {"index": i, "domain": d, "name": n,
             "method": "power x time" if d in self.power_integrated else "energy counter"}
            for i, d, n in zip(self.indices, self.domains, self._names, strict=True)
        ]}

    def _power_w(self, k: int) -> float:
        return float(self._nvml.nvmlDeviceGetPowerUsage(self._handles[k])) / 1000.0

    def _sample_power(self) -> float:
        with self._lock:
            t = time.monotonic()
            dt = t - self._t_last
            for k, base in enumerate(self._base_mj):
                if base is None:
                    w = self._power_w(k)
                    self._power_j[k] += 0.5 * (w + self._last_w[k]) * dt
                    self._last_w[k] = w
            self._t_last = t
            return t

    def _read(self) -> Reading:
        if self._sampler is not None:
            self._sampler.check()
        t = self._sample_power()
        joules: dict[str, float] = {}
        with self._lock:
            for k, base in enumerate(self._base_mj):
                if base is None:
                    joules[self.domains[k]] = self._power_j[k]
                else:
                    now = float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handles[k]))
                    joules[self.domains[k]] = max(0.0, now - base) / 1000.0
        return Reading(joules, t=t, kind=MEASURED, source=self.source)

    def _close(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
        try:
            self._nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - closing must not fail because the driver went away
            pass

    @classmethod
    def _probe(cls, **options: Any) -> Probe:
        try:
            nv = _load(options.get("nvml"))
            count = _init(nv)
        except MeterUnavailable as exc:
            return Probe(False, exc.reason, MEASURED, [])
        try:
            indices = options.get("indices") or list(range(count))
            return Probe(True, None, MEASURED, [f"gpu-{i}" for i in indices])
        finally:
            nv.nvmlShutdown()
