"""Metering for frameworks whose work stays on this host: native pools, Lithops localhost."""

from __future__ import annotations

from typing import Any

from rayjoule.core.result import MeterLabel
from rayjoule.metering.host_meter import HostMeter, IdleBaseline, PidProvider, WindowEnergy


class LocalMetering:
    """Metering for frameworks whose work stays on this host (native, Lithops localhost).

    The same interface as :class:`rayjoule.metering.ray_meters.RayMetering`: idle
    baseline, then start/stop around each repeat, per physical host.
    """

    def __init__(self, meter: str, tdp_scope: str, pids: PidProvider | None = None,
                 **tdp: Any) -> None:
        self._hm = HostMeter(meter, tdp_scope, pids, **tdp)
        self._wid: int | None = None
        self.host_info = {self._hm.host: self._hm.describe()}

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

    def record_tasks(self, tasks: list) -> None:
        """Native and Lithops runs export no Ray metrics (RayMetering does): nothing to do."""

    def close(self) -> None:
        self._hm.close()
