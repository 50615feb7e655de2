"""Which Ray tasks ran inside a measured block, where and when: Ray's task events.

Ray records every task attempt as *task events* (running, finished or failed, with node and
worker pid) in the GCS, the data source of its state API (``ray list tasks``).
:class:`EventReader` reads one job's events straight from the GCS (``GetTaskEvents`` with a
job filter, the RPC the state API calls): no dashboard needed, no 10,000-row cap,
nanosecond times, Ray's count of dropped events, ~30 ms per 1,000 tasks where
``ray.util.state.list_tasks(detail=True)`` takes ~0.5 s (6 s for 10,000). That path rests
on Ray's generated protobufs, not a public API, so the public ``list_tasks`` is the
fallback (a Ray that sends task events to the dashboard, or moved those modules).

Workers flush events every ``RAY_task_events_report_interval_ms`` (1 s by default), so
:func:`settle` polls until the block's tasks have ended or stay running past it. The CPU
time of each task comes from :mod:`~rayjoule.runs.measured_block.worker_cpu`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from rayjoule.core.errors import RayjouleError
from rayjoule.metering.meter_actors import MeterActor

log = logging.getLogger(__name__)

#: names of the probe tasks rayjoule itself submits (never counted as the user's tasks)
HOST_PROBE = "rayjoule.host_probe"
#: the class of the per-node actor that samples workers' CPU time (``worker_cpu``)
CPU_SAMPLER_CLASS = "RayjouleCpuSampler"
_OWN_ACTOR_PREFIXES = (f"{MeterActor.__name__}.", f"{CPU_SAMPLER_CLASS}.")
#: slack after the report interval before the first poll (network, GCS merge)
GRACE_S = 0.25
POLL_S = 0.25
DEFAULT_REPORT_INTERVAL_S = 1.0
_TERMINAL = ("FINISHED", "FAILED")
#: the profile event spanning the task's own code (not argument fetching or output storing)
EXECUTE = "task:execute"


@dataclass(frozen=True)
class TaskEvent:
    """One task attempt as Ray recorded it; times are epoch seconds (None: not reached).

    ``start``/``end`` span the task's own code (Ray's ``task:execute`` profile event) when
    Ray recorded it, else its RUNNING and FINISHED/FAILED times, which also count waiting
    for arguments, queueing inside an actor and storing outputs.
    """

    task_id: str
    attempt: int
    name: str
    kind: str  # NORMAL_TASK, ACTOR_CREATION_TASK, ACTOR_TASK, DRIVER_TASK, "" if not yet known
    actor_id: str | None
    node_id: str
    pid: int
    worker_id: str
    cpus: float
    start: float | None
    end: float | None
    state: str

    @property
    def known(self) -> bool:
        """Whether the submitter's part of the events (name, type) has arrived."""
        return bool(self.kind)


@dataclass
class EventBatch:
    """One read of a job's task events and what the data source said about completeness."""

    events: list[TaskEvent]
    source: str
    #: task attempts whose status events Ray dropped for this job (None: not reported)
    dropped: int | None = 0
    truncated: bool = False
    #: events of attempts that had ended before ``since`` (skipped unread: a long-lived job)
    ended_before: int = 0


@dataclass
class Selection:
    """The block's task attempts, and why the job's other events were left out."""

    tasks: list[TaskEvent]
    excluded: dict[str, int] = field(default_factory=dict)
    running_at_exit: int = 0


def report_interval_s() -> float:
    """How often Ray's workers flush task events (as this driver's environment says)."""
    raw = os.environ.get("RAY_task_events_report_interval_ms", "")
    return float(raw) / 1000.0 if raw.isdigit() else DEFAULT_REPORT_INTERVAL_S


# -- reading events ------------------------------------------------------------
class EventReader:
    """Reads one job's task events, from the GCS when it can, else through the state API."""

    def __init__(self, job_id: str, gcs_address: str) -> None:
        self.job_id, self.gcs_address = job_id, gcs_address
        self._channel: Any = None
        self._stub: Any = None
        self._use_gcs = _gcs_has_task_events()

    def read(self, since: float | None = None) -> EventBatch:
        """The job's events; from the GCS, those of attempts ended before ``since`` (epoch
        seconds) are only counted, not converted."""
        if self._use_gcs:
            try:
                return self._read_gcs(since)
            except (ImportError, AttributeError) as exc:  # a Ray whose internals moved
                log.info("reading task events from the GCS is not possible here (%s); "
                         "using the state API", exc)
                self._use_gcs = False
        return self._read_state_api()

    def _read_gcs(self, since: float | None) -> EventBatch:
        from ray._private import ray_constants
        from ray._private.grpc_utils import init_grpc_channel
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc
        from ray.core.generated.common_pb2 import TaskStatus

        if self._stub is None:
            self._channel = init_grpc_channel(self.gcs_address, options=[
                ("grpc.max_receive_message_length", ray_constants.GRPC_CPP_MAX_MESSAGE_SIZE)])
            self._stub = gcs_service_pb2_grpc.TaskInfoGcsServiceStub(self._channel)
        request = gcs_service_pb2.GetTaskEventsRequest()
        request.filters.job_filters.append(gcs_service_pb2.GetTaskEventsRequest.Filters.JobIdFilter(
            job_id=bytes.fromhex(self.job_id), predicate=0))  # 0 = EQUAL
        reply = self._stub.GetTaskEvents(request, timeout=60)
        if reply.status.code != 0:
            raise RayjouleError(f"Ray's GCS refused the task-events query: {reply.status.message}")
        cutoff = int((since or 0) * 1e9)
        done = (TaskStatus.Value("FINISHED"), TaskStatus.Value("FAILED"))
        fresh = [e for e in reply.events_by_task
                 if not 0 < max(e.state_updates.state_ts_ns.get(k, 0) for k in done) < cutoff]
        return EventBatch([_from_proto(e) for e in fresh], "gcs",
                          dropped=int(reply.num_status_task_events_dropped),
                          truncated=reply.num_truncated > 0,
                          ended_before=len(reply.events_by_task) - len(fresh))

    def _read_state_api(self) -> EventBatch:
        from ray.util.state import list_tasks
        from ray.util.state.exception import RayStateApiException

        query = dict(address=self.gcs_address, filters=[("job_id", "=", self.job_id)],
                     detail=True, limit=10_000, timeout=60)
        try:
            rows, truncated = list_tasks(**query, raise_on_missing_output=True), False
        except RayStateApiException as exc:  # events dropped or over the 10,000 rows
            log.warning("Ray's state API returned incomplete task events: %s", exc)
            rows, truncated = list_tasks(**query, raise_on_missing_output=False), True
        return EventBatch([_from_state(r) for r in rows], "state-api",
                          dropped=None if truncated else 0, truncated=truncated)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = self._stub = None


def _gcs_has_task_events() -> bool:
    """False where Ray sends task events to the dashboard head instead of the GCS."""
    import ray

    flag = getattr(ray._config, "enable_task_events_to_dashboard_head", None)
    return not (callable(flag) and flag())


def _from_proto(e: Any) -> TaskEvent:
    from ray.core.generated.common_pb2 import TaskStatus, TaskType

    info, su, ts = e.task_info, e.state_updates, e.state_updates.state_ts_ns
    start = ts.get(TaskStatus.Value("RUNNING"))
    end = ts.get(TaskStatus.Value("FINISHED")) or ts.get(TaskStatus.Value("FAILED"))
    for p in e.profile_events.events:
        if p.event_name == EXECUTE and p.end_time > p.start_time > 0:
            start, end = p.start_time, p.end_time
    kind = TaskType.Name(info.type) if e.HasField("task_info") else ""
    return TaskEvent(
        task_id=e.task_id.hex(), attempt=int(e.attempt_number),
        name=_stage(info.name, info.func_or_class_name, kind), kind=kind,
        actor_id=info.actor_id.hex() or None, node_id=su.node_id.hex(),
        pid=int(su.worker_pid), worker_id=su.worker_id.hex(),
        cpus=float(info.required_resources.get("CPU", 0.0)),
        start=start / 1e9 if start else None, end=end / 1e9 if end else None,
        state=TaskStatus.Name(max(ts, key=ts.__getitem__, default=0)))


def _from_state(r: Any) -> TaskEvent:
    kind = r.type or ""
    start_ms, end_ms = r.start_time_ms, r.end_time_ms
    for p in (getattr(r, "profiling_data", None) or {}).get("events", []):
        if p.get("event_name") == EXECUTE and p.get("end_time", 0) > p.get("start_time", 0) > 0:
            start_ms, end_ms = p["start_time"], p["end_time"]
    return TaskEvent(
        task_id=r.task_id, attempt=int(r.attempt_number or 0),
        name=_stage(r.name or "", r.func_or_class_name or "", kind), kind=kind,
        actor_id=r.actor_id, node_id=r.node_id or "", pid=int(r.worker_pid or 0),
        worker_id=r.worker_id or "",
        cpus=float((r.required_resources or {}).get("CPU", 0.0)),
        start=start_ms / 1e3 if start_ms else None,
        end=end_ms / 1e3 if end_ms else None, state=r.state or "")


def _stage(name: str, func: str, kind: str) -> str:
    """A task's name (its function's, or ``.options(name=...)`` as Ray Data's operators);
    ``Class.method`` for actor calls (Ray names those after the actor's repr)."""
    if kind.startswith("ACTOR") and func:
        return func
    return name or func or "<unknown>"


# -- choosing the block's tasks --------------------------------------------------
def is_own(e: TaskEvent) -> bool:
    """rayjoule's own tasks: host and CPU probes, the meter actors' calls."""
    return e.name == HOST_PROBE or e.name.startswith(_OWN_ACTOR_PREFIXES)


def select(events: Iterable[TaskEvent], t_start: float, t_end: float,
           ended_before: int = 0) -> Selection:
    """The attempts that began running inside ``[t_start, t_end]`` (epoch seconds).

    Left out, and counted by reason: the driver, rayjoule's own tasks, attempts that never
    ran, began before the block (even if they ended inside it) or after it. An attempt still
    running at ``t_end`` is kept, ending at ``t_end`` (the windows closed there).
    """
    excluded: dict[str, int] = defaultdict(int)
    if ended_before:
        excluded["before_block"] = ended_before
    tasks, running = [], 0
    for e in events:
        reason = ("driver" if e.kind == "DRIVER_TASK" else "rayjoule" if is_own(e)
                  else "not_started" if e.start is None else "before_block" if e.start < t_start
                  else "after_block" if e.start > t_end else None)
        if reason:
            excluded[reason] += 1
            continue
        if e.end is None or e.end > t_end:
            running += 1
            e = dataclasses.replace(e, end=t_end)
        tasks.append(e)
    tasks.sort(key=lambda e: (e.start, e.task_id, e.attempt))
    return Selection(tasks, dict(excluded), running)


def locate(tasks: list[TaskEvent], events: Iterable[TaskEvent]) -> list[TaskEvent]:
    """Fill in the node of attempts whose events lack it (Ray leaves it out of an actor's
    creation task): the node of another event of the same worker or actor, else the
    actor's node in the GCS actor table."""
    events = list(events)
    by_worker = {e.worker_id: e.node_id for e in events if e.worker_id and e.node_id}
    by_actor = {e.actor_id: e.node_id for e in events if e.actor_id and e.node_id}
    return [dataclasses.replace(t, node_id=by_worker.get(t.worker_id) or by_actor.get(
        t.actor_id or "") or _actor_node(t.actor_id)) if not t.node_id else t for t in tasks]


def _actor_node(actor_id: str | None) -> str:
    import ray

    if not actor_id or not ray.is_initialized():  # never start Ray again to ask
        return ""
    from ray._private.state import actors  # the GCS actor table (as ``ray.state.actors``)

    return str(actors(actor_id=actor_id).get("Address", {}).get("NodeID", ""))


def settle(read: Callable[[], EventBatch], t_start: float, t_end: float, *,
           ended_at: float, interval_s: float, limit_s: float,
           clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep) -> tuple[EventBatch, bool]:
    """Poll ``read`` until the block's events stop changing; return (last batch, settled).

    Nothing is read before one report interval (+ a grace) has passed since the block
    ended (``ended_at`` on ``clock``): until then, tasks whose worker has not flushed yet are
    simply absent. After that the events are settled when every task of the block has
    ended (and its submitter's events arrived), or when the unfinished ones stayed the same
    for another interval (they really run past the block). ``limit_s`` bounds the wait.
    """
    deadline = ended_at + limit_s
    first = min(ended_at + interval_s + GRACE_S, deadline)
    sleep(max(first - clock(), 0.0))
    unchanged_since, last = clock(), None
    while True:
        batch = read()
        pending = frozenset((e.task_id, e.attempt, e.state, e.known, e.pid) for e in batch.events
                            if _unsettled(e, t_start, t_end))
        now = clock()
        log.debug("task events after %.2f s: %d for the job, %d of the block's unsettled",
                  now - ended_at, len(batch.events), len(pending))
        if not pending:
            return batch, True
        if pending != last:
            last, unchanged_since = pending, now
        elif now - unchanged_since >= interval_s + GRACE_S:
            return batch, True
        if now >= deadline:
            return batch, False
        sleep(min(POLL_S, max(deadline - now, 0.0)))


def _unsettled(e: TaskEvent, t_start: float, t_end: float) -> bool:
    """A block's task whose end, its submitter's events or its worker's (status and
    profile events travel separately) may still be on their way."""
    if e.kind == "DRIVER_TASK" or is_own(e):
        return False
    if e.start is None:  # submitted, its start not reported yet: its worker's half may be
        return e.state not in _TERMINAL  # late (a stuck one settles by the unchanged rule)
    if not t_start <= e.start <= t_end:
        return False
    return e.state not in _TERMINAL or not e.known or not e.pid
