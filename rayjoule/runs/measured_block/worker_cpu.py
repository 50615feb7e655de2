"""How much CPU time each task of a measured block used: Ray workers sampled at its edges.

Task events carry no CPU time. :func:`cpu_sample` reads every Ray worker process's CPU time
on each node (a zero-CPU task pinned to the node: pids are read in the workers' own pid
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

from rayjoule.cluster.connect import remote_once
from rayjoule.runs.measured_block.task_events import CPU_PROBE, TaskEvent

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


def _probe(node_id: str) -> tuple[str, CpuSample]:
    return node_id, cpu_sample()


def submit_cpu_probes(node_ids: Iterable[str]) -> list[Any]:
    """Start one zero-CPU probe pinned to each node; collect with :func:`collect_cpu`."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = remote_once(_probe)
    return [probe.options(num_cpus=0, name=CPU_PROBE, max_retries=0,
                          scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False))
            .remote(n) for n in node_ids]


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
