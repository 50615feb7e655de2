"""Metering across a Ray cluster through the per-host meter actors.

One window per repeat on every physical host's ``rayjoule-meter:<host>`` actor
(:mod:`rayjoule.metering.meter_actors`); hosts that join mid-run get an actor and a window
from a :class:`~rayjoule.metering.meter_actors.NodeWatcher`; a host lost mid-run keeps the
energy last seen. The actors outlive the run on purpose (reused, exporting metrics).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Iterable
from typing import Any

from rayjoule.cluster.connect import PROBE_TIMEOUT_S, alive_nodes, hosts_of_cluster
from rayjoule.cluster.hosts import host_key
from rayjoule.core.config import RunConfig
from rayjoule.core.result import MeterLabel
from rayjoule.metering.base import Metering
from rayjoule.metering.host_meter import IdleBaseline, WindowEnergy
from rayjoule.metering.meter_actors import (
    WATCH_INTERVAL_S,
    NodeWatcher,
    meter_actor,
    meter_actors,
    meter_spec,
)

log = logging.getLogger(__name__)


class RayMetering(Metering):
    """Metering across a Ray cluster through the per-host meter actors.

    ``workload`` and ``framework`` tag the energy the actors export
    (:mod:`rayjoule.metering.metrics`); without a ``workload`` nothing is exported.
    """

    def __init__(self, meter: str, tdp_scope: str, *, workload: str | None = None,
                 framework: str = "ray", watch_interval_s: float = WATCH_INTERVAL_S,
                 **tdp: Any) -> None:
        import ray

        self._ray = ray
        self._spec = meter_spec(meter, tdp_scope, **tdp)
        self._workload, self._framework = workload, framework
        self._run_id: str | None = None
        self._lock = threading.Lock()
        hosts = hosts_of_cluster()
        #: host → ids of its Ray nodes when metering began (nodes that join are watched)
        self.node_hosts = hosts
        self._actors = meter_actors(hosts)
        here = self._actors.get(host_key())  # the driver is a process of its own host only
        # one round trip for all of it: submitted together, fetched together
        watching = [] if here is None else [here.watch_pids.remote([os.getpid()])]
        labels = [a.label.remote(self._spec) for a in self._actors.values()]
        described = [a.describe.remote(self._spec) for a in self._actors.values()]
        ray.get(watching)
        self.label = _combined_label(ray.get(labels))
        self.host_info: dict[str, dict[str, Any]] = dict(zip(
            self._actors, ray.get(described), strict=True))
        self._wids: dict[str, int] = {}
        #: task-energy exports sent to the meter actors and not yet confirmed: (host, ref)
        self._exports: list[tuple[str, Any]] = []
        #: the energy each open window had when last looked at (kept if its host is lost)
        self._last_seen: dict[str, WindowEnergy] = {}
        #: the look sent at each window's opening, read only if its host is lost (host → ref)
        self._first_looks: dict[str, Any] = {}
        self._watcher = NodeWatcher(
            known_nodes=[n for ids in hosts.values() for n in ids], known_hosts=hosts,
            on_new_host=self._join, list_nodes=lambda: [n["NodeID"] for n in alive_nodes()],
            hosts_of=lambda ids: hosts_of_cluster(ids, timeout_s=PROBE_TIMEOUT_S),
            interval_s=watch_interval_s, on_tick=self.peek,
        )

    @classmethod
    def from_config(cls, config: RunConfig) -> RayMetering:
        """Meter actors for ``config``'s meter, exporting under its workload and framework."""
        return cls(config.meter, config.tdp_scope, workload=config.workload,
                   framework=config.framework, tdp_watts=config.tdp_watts,
                   cpu_threads=config.cpu_threads)

    @property
    def hosts(self) -> list[str]:
        with self._lock:
            return list(self._actors)

    def idle(self, seconds: float) -> dict[str, IdleBaseline]:
        refs = {h: a.idle_baseline.remote(self._spec, seconds)
                for h, a in self._actors.items()}
        return {h: self._ray.get(r) for h, r in refs.items()}

    def name_run(self, run_id: str) -> None:
        """The run the next window belongs to: the meter actors' log lines name it."""
        self._run_id = run_id

    def start(self) -> None:
        """Open a window on every host's meter, and watch for hosts that join meanwhile."""
        self._check_exports(wait=False)
        with self._lock:
            actors = dict(self._actors)
        refs = {h: a.start_window.remote(self._spec, self._workload, self._framework)
                for h, a in actors.items()}
        wids = {h: self._ray.get(r) for h, r in refs.items()}
        with self._lock:
            self._wids = wids
        # a first look at every window, not waited for (the work starts now): a host lost
        # before the watcher's first look is still kept (complete = False) with what its
        # meter answered then, not dropped from the run
        self._first_looks = {h: actors[h].peek_window.remote(self._spec, w)
                             for h, w in wids.items()}
        self._watcher.start()

    def _join(self, host: str, node_ids: list[str]) -> None:
        """A host joined: give it a meter, and a window too while one is open."""
        actor = meter_actor(host, node_ids[0])
        with self._lock:
            in_window = bool(self._wids)
        described = actor.describe.remote(self._spec)  # a run lists every host's info
        wid = None
        if in_window:
            wid = self._ray.get(actor.start_window.remote(self._spec, self._workload,
                                                          self._framework))
        info = self._ray.get(described)
        with self._lock:
            self._actors[host] = actor
            self.host_info[host] = info
            if wid is not None:
                self._wids[host] = wid
        log.info("host %s joined the cluster; metering it from now on", host)

    def peek(self) -> None:
        """Remember every open window's energy so far: a host lost later keeps it."""
        with self._lock:
            wids, actors = dict(self._wids), dict(self._actors)
        refs = {h: actors[h].peek_window.remote(self._spec, w) for h, w in wids.items()}
        for h, r in refs.items():
            try:
                window = self._ray.get(r, timeout=PROBE_TIMEOUT_S)
            except (self._ray.exceptions.RayError, TimeoutError) as exc:
                log.warning("meter of host %s did not answer: %s", h, exc)
                continue
            with self._lock:
                self._last_seen[h] = window

    def _first_look(self, host: str) -> WindowEnergy | None:
        """The window as its meter answered the look sent when it opened (None: no answer)."""
        ref = self._first_looks.get(host)
        if ref is None:
            return None
        try:
            return self._ray.get(ref, timeout=PROBE_TIMEOUT_S)
        except (self._ray.exceptions.RayError, TimeoutError) as exc:
            log.warning("meter of host %s never answered its first look: %s", host, exc)
            return None

    def watch_once(self) -> list[str]:
        """Look for hosts that joined now (what the watcher does every few seconds in a window).

        Returns the new hosts, each given a meter (and a window when one is open).
        """
        return self._watcher.poll()

    def stop(self) -> dict[str, WindowEnergy]:
        """Close every open window.

        A host whose meter actor died mid-run keeps the energy last seen (``complete`` =
        False). A watcher that died on an error is raised after the windows are closed.
        """
        watch_error: Exception | None = None
        try:
            self._watcher.stop()
        except Exception as exc:
            watch_error = exc
        with self._lock:
            wids, self._wids = self._wids, {}
            actors = dict(self._actors)
        refs = {h: actors[h].stop_window.remote(self._spec, w, self._workload,
                                                self._framework, self._run_id)
                for h, w in wids.items()}
        out = {}
        for h, r in refs.items():
            try:
                out[h] = self._ray.get(r)
            except self._ray.exceptions.RayError as exc:
                # the actor died with its node, or its node is cut off (a network partition:
                # ActorUnavailableError until the GCS declares the node dead)
                lost = self._last_seen.get(h) or self._first_look(h)
                log.warning("meter of host %s was lost mid-run (%s); keeping the %s", h, exc,
                            "energy measured until then" if lost else "no energy: none seen")
                if lost is not None:
                    out[h] = dataclasses.replace(lost, complete=False)
        self._last_seen, self._first_looks = {}, {}
        if watch_error is not None:
            raise watch_error
        return out

    def record_tasks(self, tasks: Iterable[Any]) -> None:
        """Export each task's attributed energy (``TaskRecord.energy_j``) from its host's meter.

        Called by the runner after attribution, which happens in the driver,
        whose own metrics would die with it.
        """
        if self._workload is None:
            return
        by_host: dict[str, list[float]] = {}
        for t in tasks:
            by_host.setdefault(t.host, []).append(float(t.energy_j))
        with self._lock:
            actors = dict(self._actors)
        for h in set(by_host) - set(actors):
            log.warning("tasks ran on host %s, which has no meter; their energy is not exported",
                        h)
        # not waited for here (the run's result does not depend on it): checked at the
        # next window and when metering closes, so a failed export is still reported
        sent = [(h, actors[h].record_tasks.remote(self._spec, self._workload,
                                                  self._framework, energies))
                for h, energies in by_host.items() if h in actors]
        with self._lock:
            self._exports.extend(sent)

    def _check_exports(self, wait: bool) -> None:
        """Report task-energy exports that failed; ``wait`` for those still in flight."""
        with self._lock:
            pending, self._exports = self._exports, []
        for h, ref in pending:
            if not wait and not self._ray.wait([ref], timeout=0)[0]:
                with self._lock:
                    self._exports.append((h, ref))
                continue
            try:
                self._ray.get(ref, timeout=PROBE_TIMEOUT_S)
            except (self._ray.exceptions.RayError, TimeoutError) as exc:
                log.warning("exporting task energies on host %s failed: %s", h, exc)

    def close(self) -> None:
        """Stop watching; the actors stay alive on purpose (reused later, exporting metrics)."""
        self._watcher.stop()
        if self._ray.is_initialized():
            self._check_exports(wait=True)


def _combined_label(labels: Iterable[MeterLabel]) -> MeterLabel:
    labels = list(labels)
    names = sorted({lb.name for lb in labels})
    kinds = {lb.kind for lb in labels}
    kind = "measured" if kinds == {"measured"} else "modelled"
    return MeterLabel(name="+".join(names), kind=kind)
