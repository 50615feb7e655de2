"""Which metering a run gets: the driver's host, every host of a Ray cluster, or the calls."""

from __future__ import annotations

from typing import Any

from rayjoule.core.config import RunConfig


def metering_for(config: RunConfig, *, remote_calls: bool = False) -> Any:
    """Ray → a meter actor per physical host; a remote function platform → each call
    meters itself; otherwise the driver's own host (native pools, Lithops localhost)."""
    tdp = {"tdp_watts": config.tdp_watts, "cpu_threads": config.cpu_threads}
    if config.framework == "ray":
        from rayjoule.metering.ray_meters import RayMetering

        return RayMetering(config.meter, config.tdp_scope, workload=config.workload,
                           framework=config.framework, **tdp)
    if remote_calls:
        from rayjoule.metering.calls import CallMetering

        return CallMetering()
    from rayjoule.metering.local import LocalMetering

    return LocalMetering(config.meter, config.tdp_scope, pids=None, **tdp)
