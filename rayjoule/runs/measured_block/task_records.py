"""A measured block's Ray task attempts as rayjoule's TaskRecords, stages and summary.

:mod:`~rayjoule.runs.measured_block.task_events` reads and selects Ray's task events;
this module turns the chosen attempts into what :func:`~rayjoule.runs.assemble.assemble`
attributes: one ``TaskRecord`` per attempt (host, CPU time, CPUs held), one stage per task
name, and the summary that says how complete the task list is (``docs/measure.md``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from rayjoule.core.result import TaskRecord
from rayjoule.frameworks.job import Job, StagePlan
from rayjoule.runs.measured_block import task_events, worker_cpu
from rayjoule.runs.measured_block.task_events import EventBatch, Selection, TaskEvent
from rayjoule.runs.measured_block.worker_cpu import CpuSample

log = logging.getLogger(__name__)


def records(chosen: Selection, batch: EventBatch,
            before: dict[str, CpuSample], after: dict[str, CpuSample],
            node_host: dict[str, str], t_start: float) -> tuple[list[TaskRecord], list[str]]:
    """The block's task attempts as TaskRecords, and how each one's CPU time was found.

    Attempts whose events arrived without a node (a short ``settle_s``) are dropped and
    counted in ``chosen.excluded``; nodes that joined during the block are asked for their
    host, which ``node_host`` (node id → host) then remembers.
    """
    located = task_events.locate(chosen.tasks, batch.events)
    chosen.tasks = [t for t in located if t.node_id]
    if len(chosen.tasks) < len(located):
        chosen.excluded["node_unknown"] = len(located) - len(chosen.tasks)
    _map_new_nodes({t.node_id for t in chosen.tasks}, node_host)
    actor_cpus = {e.actor_id: e.cpus for e in batch.events
                  if e.kind == "ACTOR_CREATION_TASK" and e.actor_id}

    def slot(e: TaskEvent) -> float:
        """CPUs held: a method call holds (at least) what its actor reserved."""
        if e.kind == "ACTOR_TASK":
            return max(e.cpus, actor_cpus.get(e.actor_id, 0.0))
        return e.cpus

    cpu, basis = worker_cpu.task_cpu(chosen.tasks, before, after, slot)
    out = [
        TaskRecord(task_id=i, node_id=e.node_id,
                   host=node_host.get(e.node_id, f"unknown-node:{e.node_id[:12]}"),
                   pid=e.pid, start=e.start or t_start, end=e.end or e.start or 0.0,
                   cpu_s=c, stage=e.name, slot_cpus=slot(e),
                   framework_stats={"ray_task_id": e.task_id, "attempt": e.attempt,
                                    "type": e.kind, "state": e.state, "cpu": b})
        for i, (e, c, b) in enumerate(zip(chosen.tasks, cpu, basis, strict=True))
    ]
    return out, basis


def _map_new_nodes(node_ids: set[str], node_host: dict[str, str]) -> None:
    """Nodes that joined during the block: ask them which host they are on."""
    import ray

    from rayjoule.cluster.connect import hosts_of_cluster

    unknown = node_ids - set(node_host)
    if not unknown:
        return
    if not ray.is_initialized():  # the program shut Ray down: asking would start a new one
        log.warning("nodes %s joined during the block but Ray was shut down before they "
                    "said which host they are on", sorted(unknown))
        return
    try:
        found = hosts_of_cluster(unknown, timeout_s=10.0)
    except (ray.exceptions.RayError, TimeoutError) as exc:
        log.warning("nodes %s did not say which host they are on: %s", sorted(unknown), exc)
        return
    node_host.update({n: h for h, ids in found.items() for n in ids})


def summary(name: str, chosen: Selection, batch: EventBatch,
            settled: bool, basis: list[str], phases_s: dict[str, float]) -> dict[str, Any]:
    """What the block saw of Ray's task events, and how complete they were."""
    return {"name": name, "tasks_seen": len(chosen.tasks),
            "task_events": len(batch.events) + batch.ended_before,
            "excluded": dict(sorted(chosen.excluded.items())),
            "running_at_exit": chosen.running_at_exit,
            "events_dropped": bool(batch.dropped) or batch.truncated,
            "events_dropped_n": batch.dropped, "events_settled": settled,
            "task_source": batch.source,
            "cpu_time": {b: basis.count(b) for b in ("sampled", "estimated")},
            "phases_s": {k: round(v, 4) for k, v in phases_s.items()}}


def job_of(task_records: list[TaskRecord]) -> Job:
    """The stages assemble() reports: one per task name, in order of first start."""
    by_stage: dict[str, list[TaskRecord]] = defaultdict(list)
    for r in sorted(task_records, key=lambda r: r.start):
        by_stage[r.stage].append(r)
    return Job(pipeline=None, size=None, seed=0, params={}, stages=tuple(
        StagePlan(name, len(rs), max(r.slot_cpus for r in rs)) for name, rs in by_stage.items()))
