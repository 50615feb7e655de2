"""Meter actors: one long-lived ``rayjoule-meter:<host>`` actor per physical host.

Each actor owns its host's :class:`~rayjoule.metering.host_meter.HostMeter` and lives in
the fixed ``rayjoule`` namespace, detached, so later runs find and reuse it by
name and its cumulative counters (and Ray metrics, :mod:`rayjoule.metering.metrics`)
outlive any single run. The actors take no CPU resource, so they never compete
with the work. An actor is pinned to the driver's node (else the head) when its
host has one, so removing a worker node in the middle of a run does not take
the meter and its window with it.

Hosts that join the cluster during a run are found by :class:`NodeWatcher`;
:class:`~rayjoule.metering.ray_cluster.RayMetering` gives them a meter actor and a window
(they have no idle baseline, which the runner records as such).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from meters._sampler import Sampler
from rayjoule.cluster.connect import (
    NAMESPACE,
    alive_nodes,
    hosts_of_cluster,
    is_head,
    ray_process_pids,
    remote_once,
)
from rayjoule.cluster.hosts import host_key
from rayjoule.core.result import MeterLabel
from rayjoule.metering.host_meter import HostMeter, IdleBaseline, WindowEnergy
from rayjoule.metering.metrics import (
    EnergyMetrics,
    ray_report_interval_s,
    settle_seconds,
)
from rayjoule.metering.power_gauge import PowerPublisher
from rayjoule.metering.window_log import WindowLog, log_file_name

log = logging.getLogger(__name__)

ACTOR_PREFIX = "rayjoule-meter:"
#: bumped when MeterActor's methods change, so a detached actor left by an older
#: rayjoule on a long-lived cluster is replaced instead of failing mid-run
API_VERSION = 5
WATCH_INTERVAL_S = 2.0

#: which meters a host meter runs: (meter name or "auto", tdp scope, tdp overrides)
MeterSpec = tuple[str, str, tuple[tuple[str, Any], ...]]


def meter_spec(meter: str, scope: str, **tdp: Any) -> MeterSpec:
    """A hashable spec (actors key their host meters by it)."""
    return (meter, scope, tuple(sorted((k, v) for k, v in tdp.items() if v is not None)))


class MeterActor:
    """Holds one HostMeter per (meter, scope) asked for on this host, and exports their energy."""

    def __init__(self) -> None:
        self._meters: dict[tuple[Any, ...], HostMeter] = {}
        self._extra_pids: dict[int, float] = {}  # pid → create time (pids get reused)
        self._lock = threading.Lock()
        self._metrics = EnergyMetrics(settle_s=settle_seconds(ray_report_interval_s()))
        self._power = PowerPublisher(self._metrics, self._host_meters)
        self._window_log: WindowLog | None = None  # opened at the first window closed

    def _get(self, spec: MeterSpec) -> HostMeter:
        meter, scope, tdp = spec
        with self._lock:  # the actor is threaded (max_concurrency > 1)
            if spec not in self._meters:
                self._meters[spec] = HostMeter(meter, scope, pids=self._pids, **dict(tdp))
        self._power.start()
        return self._meters[spec]

    def _host_meters(self) -> list[HostMeter]:
        with self._lock:
            return list(self._meters.values())

    def _pids(self) -> list[int]:
        return sorted(set(ray_process_pids()) | set(_still_alive(self._extra_pids)))

    def api_version(self) -> int:
        return API_VERSION

    def label(self, spec: MeterSpec) -> MeterLabel:
        return self._get(spec).label

    def watch_pids(self, pids: list[int]) -> None:
        """Also charge these processes of this host (e.g. the driver) in a process-scope model.

        The actor outlives drivers, so a pid is only charged while the process
        that had it when it was given still runs.
        """
        import psutil

        for pid in pids:
            try:
                self._extra_pids[pid] = psutil.Process(pid).create_time()
            except psutil.Error as exc:
                log.warning("not watching pid %d: %s", pid, exc)

    def idle_baseline(self, spec: MeterSpec, seconds: float) -> IdleBaseline:
        return self._get(spec).idle_baseline(seconds)

    def start_window(self, spec: MeterSpec, workload: str | None = None,
                     framework: str = "ray") -> int:
        """Open a window; with a ``workload``, make its exported series exist at 0 now, so
        Prometheus sees the first run's joules as an increase (metrics module docstring)."""
        hm = self._get(spec)
        wid = hm.start_window()
        if workload is not None:
            try:
                self._metrics.open_window(workload, framework, hm.host, hm.label,
                                          hm.peek_window(wid).by_domain)
            except Exception:  # exporting must never cost the measurement itself
                log.exception("exporting the series of %s at 0 failed", workload)
        return wid

    def peek_window(self, spec: MeterSpec, wid: int) -> WindowEnergy:
        return self._get(spec).peek_window(wid)

    def describe(self, spec: MeterSpec) -> dict[str, Any]:
        return self._get(spec).describe()

    def __repr__(self) -> str:
        """What the Ray dashboard's Actors page shows. Ray records it once, when the actor
        starts, so it says only what stays true: where this actor writes each window's
        joules (live figures: :meth:`status`, the log, the ``rayjoule_*`` metrics)."""
        host = host_key()
        return (f"rayjoule-meter {host}: joules of each run in "
                f"{log_file_name(host)} (dashboard Logs page, this node)")

    def status(self) -> str:
        """Host, meters, joules and watts now (what the repr cannot show: it would go stale)."""
        return self._power.describe(host_key())

    def stop_window(self, spec: MeterSpec, wid: int, workload: str | None = None,
                    framework: str = "ray", run_id: str | None = None) -> WindowEnergy:
        """Close a window, write its line to the energy log (:mod:`~rayjoule.metering.window_log`)
        and, with a ``workload``, add its joules to the exported counters."""
        window = self._get(spec).stop_window(wid)
        try:
            if self._window_log is None:
                self._window_log = WindowLog(host_key())
            self._window_log.window(window, run_id, workload, framework)
        except Exception:  # logging must never cost the measurement itself
            log.exception("writing the energy log line of %s failed", workload)
        if workload is not None:
            try:
                self._metrics.record_window(workload, framework, window)
            except Exception:  # exporting must never lose the measurement itself
                log.exception("exporting the energy of %s failed", workload)
        return window

    def record_tasks(self, spec: MeterSpec, workload: str, framework: str,
                     energies_j: list[float]) -> int:
        """Observe the attributed energy of tasks that ran on this host (the histogram)."""
        hm = self._get(spec)
        return self._metrics.record_tasks(workload, framework, hm.host, hm.label, energies_j)

    def host(self) -> str:
        return host_key()


def _still_alive(pids: dict[int, float]) -> list[int]:
    import psutil

    alive = []
    for pid, created in list(pids.items()):
        try:
            if psutil.Process(pid).create_time() == created:
                alive.append(pid)
                continue
        except psutil.Error:
            pass  # gone: forgotten below
        pids.pop(pid, None)
    return alive


def actor_name(host: str) -> str:
    return f"{ACTOR_PREFIX}{host}"


def anchor_node(node_ids: list[str], preferred: Iterable[str]) -> str:
    """The node of a host to pin its meter on: the first of ``preferred`` on it, else the first."""
    for node_id in preferred:
        if node_id in node_ids:
            return node_id
    return node_ids[0]


def meter_actor(host: str, node_id: str) -> Any:
    """Get the meter actor of ``host`` by name, or create it pinned to ``node_id``.

    An actor from an older rayjoule (other API version) is killed and replaced.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    options = dict(
        name=actor_name(host),
        namespace=NAMESPACE,
        lifetime="detached",
        get_if_exists=True,
        num_cpus=0,
        max_concurrency=8,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
    )
    cls = remote_once(MeterActor)
    actor = cls.options(**options).remote()
    try:
        version = ray.get(actor.api_version.remote())
    except AttributeError:
        version = None
    if version == API_VERSION:
        return actor
    log.warning("replacing the meter actor of %s (API version %s, want %s)",
                host, version, API_VERSION)
    ray.kill(actor)
    _wait_name_released(ray, actor_name(host))
    return cls.options(**options).remote()


def _wait_name_released(ray: Any, name: str, timeout_s: float = 10.0) -> None:
    """``ray.kill`` is asynchronous: wait until the name is free, so it is not handed back."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            return
        time.sleep(0.1)
    log.warning("the killed actor %s still holds its name after %.0f s", name, timeout_s)


def meter_actors(hosts: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Get or create the meter actor of every physical host: host → handle.

    ``hosts`` (host → node ids, from :func:`~rayjoule.cluster.connect.hosts_of_cluster`)
    defaults to the whole cluster now. One actor serves every meter spec of its host.
    """
    import ray

    hosts = hosts_of_cluster() if hosts is None else hosts
    preferred = [ray.get_runtime_context().get_node_id(),
                 *(n["NodeID"] for n in alive_nodes() if is_head(n))]
    return {host: meter_actor(host, anchor_node(node_ids, preferred))
            for host, node_ids in sorted(hosts.items())}


class NodeWatcher:
    """Polls the cluster's alive nodes; calls ``on_new_host(host, node_ids)`` for unseen hosts.

    It remembers what it has seen across start/stop, so one watcher serves
    every window of a session. The Ray calls are parameters (``list_nodes`` →
    node ids, ``hosts_of`` → host → node ids for some node ids) so the logic
    is testable without a cluster. A node whose host cannot be probed yet (it has just joined) is
    retried at the next poll.
    """

    def __init__(self, known_nodes: Iterable[str], known_hosts: Iterable[str],
                 on_new_host: Callable[[str, list[str]], None],
                 list_nodes: Callable[[], list[str]],
                 hosts_of: Callable[[list[str]], dict[str, list[str]]],
                 interval_s: float = WATCH_INTERVAL_S,
                 on_tick: Callable[[], None] | None = None) -> None:
        self._nodes = set(known_nodes)
        self._hosts = set(known_hosts)
        self._on_new_host = on_new_host
        self._on_tick = on_tick
        self._list_nodes, self._hosts_of = list_nodes, hosts_of
        self._interval = interval_s
        self._sampler: Sampler | None = None

    def poll(self) -> list[str]:
        """One look at the cluster; return the hosts that were new."""
        fresh = [n for n in self._list_nodes() if n not in self._nodes]
        if not fresh:
            return []
        hosts = self._hosts_of(fresh)
        new = []
        for host, node_ids in sorted(hosts.items()):
            self._nodes.update(node_ids)
            if host not in self._hosts:
                self._hosts.add(host)
                self._on_new_host(host, node_ids)
                new.append(host)
        return new

    def start(self) -> None:
        self._sampler = Sampler(self._tick, self._interval, "node-watcher")
        self._sampler.start()

    def stop(self) -> None:
        """Stop watching; raises ``meters.SamplerFailed`` if the watcher died on an error."""
        sampler, self._sampler = self._sampler, None
        if sampler is not None:
            sampler.stop()
            sampler.check()

    def _tick(self) -> None:
        """One poll plus the caller's periodic work. A node that joined or left between the
        listing and the probe is a transient cluster state, retried at the next tick; any
        other error stops the watcher and surfaces at :meth:`stop`."""
        import ray

        try:
            self.poll()
        except (ray.exceptions.RayError, TimeoutError) as exc:
            log.info("watching for new Ray nodes: %s; retrying", exc)
        if self._on_tick is not None:
            self._on_tick()
