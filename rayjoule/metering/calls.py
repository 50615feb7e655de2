"""Metering on a remote function platform, where the driver's host sees none of the work.

Lithops on a cloud backend runs every call on a machine rayjoule has no meter on, so each
call meters itself (``meters.CallMeter``, inside the function) and returns its energy with
its task record; :mod:`rayjoule.runs.assemble` builds the run's hosts from those. This
object only fills the metering interface: there is no window to open on the driver and no
idle baseline to take (the calls' own meters state their basis).
"""

from __future__ import annotations

from typing import Any

from rayjoule.core.config import RunConfig
from rayjoule.core.result import MeterLabel
from rayjoule.metering.base import Metering
from rayjoule.metering.host_meter import IdleBaseline, WindowEnergy


class CallMetering(Metering):
    """The metering of a run whose calls meter themselves."""

    #: replaced by the calls' own meter label when the run is assembled
    label = MeterLabel("call", "modelled")

    @classmethod
    def from_config(cls, config: RunConfig) -> CallMetering:
        """The calls read their meter settings from the job, so nothing here needs them."""
        return cls()

    @property
    def host_info(self) -> dict[str, dict[str, Any]]:  # type: ignore[override]
        """Each call describes its own machine in its record; the driver knows none."""
        return {}

    def idle(self, seconds: float) -> dict[str, IdleBaseline]:
        return {}

    def start(self) -> None:
        """Nothing to open: the calls meter themselves."""

    def stop(self) -> dict[str, WindowEnergy]:
        return {}

