"""Metering on a remote function platform, where the driver's host sees none of the work.

Lithops on a cloud backend runs every call on a machine rayjoule has no meter on, so each
call meters itself (``meters.CallMeter``, inside the function) and returns its energy with
its task record; :mod:`rayjoule.runs.assemble` builds the run's hosts from those. This
object only fills the metering interface: there is no window to open on the driver and no
idle baseline to take (the calls' own meters state their basis).
"""

from __future__ import annotations

from typing import Any

from rayjoule.core.result import MeterLabel
from rayjoule.metering.host_meter import IdleBaseline, WindowEnergy


class CallMetering:
    """The metering of a run whose calls meter themselves."""

    #: replaced by the calls' own meter label when the run is assembled
    label = MeterLabel("call", "modelled")

    @property
    def host_info(self) -> dict[str, dict[str, Any]]:
        """Each call describes its own machine in its record; the driver knows none."""
        return {}

    def idle(self, seconds: float) -> dict[str, IdleBaseline]:
        return {}

    def start(self) -> None:
        """Nothing to open: the calls meter themselves."""

    def stop(self) -> dict[str, WindowEnergy]:
        return {}

    def record_tasks(self, tasks: list) -> None:
        """No Ray metrics for remote calls."""

    def close(self) -> None:
        """Nothing to release."""
