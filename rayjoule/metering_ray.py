"""Meter actors: one long-lived ``rayjoule-meter:<host>`` actor per physical host.

Each actor owns its host's :class:`~rayjoule.metering.HostMeter` and lives in
the fixed ``rayjoule`` namespace, detached, so later runs find and reuse it by
name and its cumulative counters (and metrics) outlive any single run. The
actors take no CPU resource, so they never compete with the work.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from rayjoule.metering import HostMeter, IdleBaseline, WindowEnergy
from rayjoule.raycluster import NAMESPACE, hosts_of_cluster, ray_process_pids
from rayjoule.result import MeterLabel

log = logging.getLogger(__name__)

ACTOR_PREFIX = "rayjoule-meter:"


class MeterActor:
    """Holds one HostMeter per (meter, scope) asked for on this host."""

    def __init__(self) -> None:
        self._meters: dict[tuple[str, str], HostMeter] = {}
        self._extra_pids: set[int] = set()

    def _get(self, meter: str, scope: str) -> HostMeter:
        key = (meter, scope)
        if key not in self._meters:
            self._meters[key] = HostMeter(meter, scope, pids=self._pids)
        return self._meters[key]

    def _pids(self) -> list[int]:
        return sorted(set(ray_process_pids()) | self._extra_pids)

    def label(self, meter: str, scope: str) -> MeterLabel:
        return self._get(meter, scope).label

    def watch_pids(self, pids: list[int]) -> None:
        """Also charge these processes (e.g. the driver) in a process-scope model."""
        self._extra_pids.update(pids)

    def idle_baseline(self, meter: str, scope: str, seconds: float) -> IdleBaseline:
        return self._get(meter, scope).idle_baseline(seconds)

    def start_window(self, meter: str, scope: str) -> int:
        return self._get(meter, scope).start_window()

    def stop_window(self, meter: str, scope: str, wid: int) -> WindowEnergy:
        return self._get(meter, scope).stop_window(wid)

    def host(self) -> str:
        from rayjoule.hostid import host_key

        return host_key()


def meter_actors(meter: str, scope: str) -> dict[str, Any]:
    """Get or create the meter actor of every physical host in the cluster: host → handle."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    cls = ray.remote(MeterActor)
    actors = {}
    for host, node_ids in sorted(hosts_of_cluster().items()):
        actors[host] = cls.options(
            name=f"{ACTOR_PREFIX}{host}",
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            num_cpus=0,
            max_concurrency=8,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_ids[0], soft=False),
        ).remote()
    return actors


class RayMetering:
    """Metering across a Ray cluster through the per-host meter actors."""

    def __init__(self, meter: str, tdp_scope: str) -> None:
        import ray

        self._ray = ray
        self._meter, self._scope = meter, tdp_scope
        self._actors = meter_actors(meter, tdp_scope)
        ray.get([a.watch_pids.remote([os.getpid()]) for a in self._actors.values()])
        labels = ray.get([a.label.remote(meter, tdp_scope) for a in self._actors.values()])
        names = sorted({lb.name for lb in labels})
        kinds = {lb.kind for lb in labels}
        self.label = MeterLabel(
            name="+".join(names), kind="measured" if kinds == {"measured"} else "modelled"
        )
        self._wids: dict[str, int] = {}

    @property
    def hosts(self) -> list[str]:
        return list(self._actors)

    def idle(self, seconds: float) -> dict[str, IdleBaseline]:
        refs = {h: a.idle_baseline.remote(self._meter, self._scope, seconds)
                for h, a in self._actors.items()}
        return {h: self._ray.get(r) for h, r in refs.items()}

    def start(self) -> None:
        refs = {h: a.start_window.remote(self._meter, self._scope)
                for h, a in self._actors.items()}
        self._wids = {h: self._ray.get(r) for h, r in refs.items()}

    def stop(self) -> dict[str, WindowEnergy]:
        wids, self._wids = self._wids, {}
        refs = {h: self._actors[h].stop_window.remote(self._meter, self._scope, w)
                for h, w in wids.items()}
        out = {}
        for h, r in refs.items():
            try:
                out[h] = self._ray.get(r)
            except self._ray.exceptions.RayError as exc:
                log.warning("meter of host %s was lost: %s", h, exc)
        return out

    def close(self) -> None:
        """The actors stay alive on purpose (reused by later runs, exporting metrics)."""
