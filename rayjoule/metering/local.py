"""Metering for frameworks whose work stays on this host: native pools, Lithops localhost."""

from __future__ import annotations

from typing import Any

from rayjoule.core.config import RunConfig
from rayjoule.core.result import MeterLabel
from rayjoule.metering.base import Metering
from rayjoule.metering.host_meter import HostMeter, IdleBaseline, PidProvider, WindowEnergy


class LocalMetering(Metering):
    """Metering for frameworks whose work stays on this host (native, Lithops localhost):
    one :class:`HostMeter`, one window per repeat."""

    def __init__(self, meter: str, tdp_scope: str, pids: PidProvider | None = None,
                 **tdp: Any) -> None:
        self._hm = HostMeter(meter, tdp_scope, pids, **tdp)
        self._wid: int | None = None
        self.host_info = {self._hm.host: self._hm.describe()}

    @classmethod
    def from_config(cls, config: RunConfig) -> LocalMetering:
        """This host's meters as ``config`` asks (meter, tdp scope, tdp overrides)."""
        return cls(config.meter, config.tdp_scope, pids=None, tdp_watts=config.tdp_watts,
                   cpu_threads=config.cpu_threads)

    @property
    def label(self) -> MeterLabel:
        return self._hm.label

    def idle(self, seconds: float) -> dict[str, IdleBaseline]:
        return {self._hm.host: self._hm.idle_baseline(seconds)}

    def start(self) -> None:
        self._wid = self._hm.start_window()

    def stop(self) -> dict[str, WindowEnergy]:
        if self._wid is None:
            return {}
        wid, self._wid = self._wid, None
        return {self._hm.host: self._hm.stop_window(wid)}

    def close(self) -> None:
        self._hm.close()
