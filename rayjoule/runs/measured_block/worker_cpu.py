"""How much CPU time each task of a measured block used: Ray workers sampled at its edges.

Task events carry no CPU time. :func:`cpu_sample` reads every Ray worker process's CPU time
on each node (in a zero-CPU actor pinned to the node: pids are read in the workers' own pid
namespace) at the block's start and end; :func:`task_cpu` splits each worker's CPU time
among the block's tasks that ran in it, by their wall time.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rayjoule.cluster.connect import NAMESPACE, remote_once
from rayjoule.runs.measured_block.task_events import CPU_SAMPLER_CLASS, TaskEvent

log = logging.getLogger(__name__)

#: markers of a Ray worker process in its command line (``ray::IDLE``, ``ray::f``)
_WORKER_MARKERS = ("ray::", "default_worker.py")


@dataclass(frozen=True)
class WorkerCpu:
    """One Ray worker process at one instant."""

    started: int  # clock ticks after boot when it started: with the pid, its identity
    created: float  # epoch seconds
    cpu_s: float  # user + system, with reaped children


#: a node's Ray worker processes by pid
CpuSample = dict[int, WorkerCpu]
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_sample() -> CpuSample:
    """CPU time of every Ray worker process visible here (run inside a node's probe task).

    Creation times come from ``/proc`` (tick-precise): psutil's add a boot time rounded to
    the second, too coarse for a worker's ~0.5 s start-up.
    """
    import psutil

    out: CpuSample = {}
    try:
        with open("/proc/uptime") as fh:
            boot = time.time() - float(fh.read().split()[0])
    except (OSError, ValueError):
        boot = None
    for p in psutil.process_iter(["cmdline", "create_time", "cpu_times"]):
        cmd, times = " ".join(p.info.get("cmdline") or []), p.info.get("cpu_times")
        if times is None or not any(m in cmd for m in _WORKER_MARKERS):
            continue
        try:
            with open(f"/proc/{p.pid}/stat") as fh:  # field 22: start time in ticks
                started = int(fh.read().rpartition(")")[2].split()[19])
            created = boot + started / _TICKS if boot is not None else p.info["create_time"]
        except (OSError, ValueError, IndexError):
            created = float(p.info["create_time"])
            started = int(created * _TICKS)
        out[p.pid] = WorkerCpu(started, created, times.user + times.system
                               + times.children_user + times.children_system)
    return out


class RayjouleCpuSampler:
    """Samples its node's Ray workers' CPU time on request (one per node, named, detached).

    Why an actor and not a probe task: a task needs a worker leased for it, and at the end
    of a block whose program has just released its workers (a Ray Data run's actor pool)
    that lease took 0.7-1.4 s; a call to a live actor takes milliseconds. Created on first
    use and kept, like the meter actors; its own process is a Ray worker that runs none of
    the block's tasks, and its calls are rayjoule's own task events, never the user's.
    """

    def sample(self, node_id: str) -> tuple[str, CpuSample]:
        return node_id, cpu_sample()


assert RayjouleCpuSampler.__name__ == CPU_SAMPLER_CLASS  # task_events filters by this name


def cpu_sampler(node_id: str) -> Any:
    """The CPU sampler actor of ``node_id`` (got by name, or created pinned to the node)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return remote_once(RayjouleCpuSampler).options(
        name=f"rayjoule-cpu:{node_id}", namespace=NAMESPACE, lifetime="detached",
        get_if_exists=True, num_cpus=0, max_restarts=0,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
    ).remote()


def submit_cpu_probes(node_ids: Iterable[str]) -> list[Any]:
    """Ask each node's sampler for a sample; collect with :func:`collect_cpu`."""
    return [cpu_sampler(n).sample.remote(n) for n in node_ids]


def collect_cpu(refs: list[Any], timeout_s: float = 30.0) -> dict[str, CpuSample]:
    """node id → its sample; a node that did not answer (it left) is missing, and logged."""
    import ray

    out: dict[str, CpuSample] = {}
    for ref in refs:
        try:
            node_id, sample = ray.get(ref, timeout=timeout_s)
        except (ray.exceptions.RayError, TimeoutError) as exc:
            log.warning("a node did not report its workers' CPU time (%s); its tasks get "
                        "the wall-time estimate", exc)
            continue
        out[node_id] = sample
    return out


def task_cpu(tasks: list[TaskEvent], before: dict[str, CpuSample],
             after: dict[str, CpuSample],
             slot_cpus: Callable[[TaskEvent], float]) -> tuple[list[float], list[str]]:
    """Each task's CPU seconds and how they were obtained (``sampled`` or ``estimated``).

    Per worker process: its CPU time between the block's two samples (which includes
    Ray's own per-task work in that process), split among its tasks by wall time. A worker
    started during the block (an actor's process, or one Ray added to its pool) first spent
    CPU starting up (importing Ray, ~0.5 CPU-s), which is the framework's overhead: its CPU
    time since creation is split by time between that start-up (creation → first task) and
    its tasks. A worker gone by the end (a killed actor, ``max_calls``) gets the estimate
    wall time × CPUs reserved, labelled ``estimated``.
    """
    by_worker: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, t in enumerate(tasks):
        by_worker[(t.node_id, t.pid)].append(i)
    cpu = [0.0] * len(tasks)
    basis = ["estimated"] * len(tasks)
    for (node, pid), idx in by_worker.items():
        walls = [max((tasks[i].end or 0.0) - (tasks[i].start or 0.0), 0.0) for i in idx]
        total = math.fsum(walls)
        first = min(tasks[i].start or 0.0 for i in idx)
        spent = _worker_cpu(before.get(node, {}).get(pid), after.get(node, {}).get(pid),
                            first, total)
        for i, w in zip(idx, walls, strict=True):
            if spent is None:
                cpu[i] = w * slot_cpus(tasks[i])
            else:
                cpu[i] = spent * (w / total if total > 0 else 1 / len(idx))
                basis[i] = "sampled"
    return cpu, basis


def _worker_cpu(then: WorkerCpu | None, now: WorkerCpu | None, first_start: float,
                tasks_wall: float) -> float | None:
    """The CPU time a worker spent on the block's tasks; None when it was not seen at the end."""
    if now is None:
        return None
    if then is not None and then.started == now.started:
        return max(now.cpu_s - then.cpu_s, 0.0)
    startup = max(first_start - now.created, 0.0)  # born in the block (or its pid reused)
    return now.cpu_s * (tasks_wall / (tasks_wall + startup) if tasks_wall + startup > 0 else 1.0)
