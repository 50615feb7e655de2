"""Stages as Ray tasks (``mode tasks``) or calls on a pool of worker actors (``mode actors``).

Speed is the point: a metering tool must not become the overhead it measures. So

* every task of every stage is submitted up front; data between stages flows as object
  references (a downstream task names its inputs as top-level arguments, which Ray
  resolves on the worker; nothing goes through the driver);
* concurrency is enforced by Ray's scheduler, not by driver round trips: when
  ``concurrency`` is below what the cluster could run at once, tasks are scheduled into a
  placement group of ``concurrency`` bundles of ``num_cpus`` each (created inside the first
  run's meter window, kept for later repeats); actors mode sizes its pool to it;
* records travel with the results and are fetched in batches at the end.

A shuffle ("bucket" route) uses ``num_returns``: the upstream task returns its buckets as
separate objects, so each reader fetches only its own bucket. Tasks are named
``<pipeline>.<stage>`` and actors ``rayjoule-worker-…`` so the Ray dashboard is legible.
"""

from __future__ import annotations

import functools
import logging
import pickle
import uuid
from collections.abc import Sequence
from typing import Any

from rayjoule.cluster.connect import connect, disconnect, remote_once, run_metadata
from rayjoule.core.errors import ConfigError, RunFailed
from rayjoule.core.result import TaskRecord
from rayjoule.frameworks.base import Executor
from rayjoule.frameworks.job import Job, JobOutput, OnTaskDone, StagePlan, route
from rayjoule.frameworks.task import run_task

log = logging.getLogger(__name__)

WORKER_NAME = "rayjoule-worker"
#: records fetched per ``ray.get`` (progress is reported per batch)
FETCH_BATCH = 1000


def _returns(stage: StagePlan) -> int:
    """How many objects one task of ``stage`` returns (see :func:`_pack`)."""
    if stage.sink and not stage.read_as:
        return 1
    whole = any(r != "bucket" for r in stage.read_as) or stage.sink
    return int(whole) + (stage.fanout if stage.bucketed else 0) + 1


def _pack(stage: StagePlan, output: Any, record: dict) -> Any:
    """One task's return value(s): the pickled (output, record) for a pure sink, else split
    objects with the pickled record last.

    What only the driver reads goes back as bytes pickled here: Ray passes bytes through
    without its own (slower, general) serialiser, which is measurable at thousands of
    short tasks. Outputs that later stages read stay objects, so Ray hands them over as is.
    """
    if stage.sink and not stage.read_as:
        return _dumps((output, record))
    whole = any(r != "bucket" for r in stage.read_as) or stage.sink
    parts = ([output] if whole else []) + (list(output) if stage.bucketed else [])
    return (*parts, _dumps(record))


def _dumps(value: Any) -> bytes:
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):  # e.g. a local class
        from ray import cloudpickle

        return cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


@functools.lru_cache(maxsize=16)
def _unpack_stage(blob: bytes) -> tuple[Any, StagePlan, Any, str]:
    """(pipeline, stage plan, context template, node id) from a stage's pickled blob.

    Every task of a stage carries the same small blob inline (no object to resolve, no
    per-task pickling of the pipeline); each worker unpickles it once.
    """
    import ray

    pipeline, stage, template = pickle.loads(blob)
    return pipeline, stage, template, ray.get_runtime_context().get_node_id()


def _ray_task(blob: bytes, spec: bytes, *flat: Any) -> Any:
    """One task: ``spec`` = the pickled (index, source descriptor, input layout).

    Both arguments are bytes, which Ray passes inline without running its own serialiser
    on them: pickling the small spec ourselves costs the driver less per task than handing
    Ray a tuple of objects (measured by experiments/bench_speed.py)."""
    index, source, layout = pickle.loads(spec)
    pipeline, stage, template, node_id = _unpack_stage(blob)
    inputs, k = {}, 0
    for up, count in layout:
        inputs[up] = list(flat[k:k + count])
        k += count
    ctx = type(template)(  # not dataclasses.replace: this runs once per task
        pipeline=template.pipeline, stage=template.stage, index=index, tasks=template.tasks,
        seed=template.seed, size=template.size, params=template.params,
        fanout=template.fanout, source=source)
    output, record = run_task(pipeline, stage, ctx, inputs, node_id)
    return _pack(stage, output, record)


def _spec(index: int, source: Any, layout: tuple[tuple[str, int], ...]) -> bytes:
    return _dumps((index, source, layout))


class RayjouleWorker:
    """A long-lived worker actor: the same process runs many tasks (no per-task start-up)."""

    def run(self, blob: bytes, spec: bytes, *flat: Any) -> Any:
        return _ray_task(blob, spec, *flat)


class _StageRefs:
    """The object references one stage produced: whole outputs, buckets, records."""

    def __init__(self, stage: StagePlan, returned: list[Any]) -> None:
        n_ret = _returns(stage)
        rows = [r if isinstance(r, list) else [r] for r in returned] if n_ret > 1 \
            else [[r] for r in returned]
        self.pure_sink = stage.sink and not stage.read_as
        whole = not self.pure_sink and (any(r != "bucket" for r in stage.read_as) or stage.sink)
        self.whole = [row[0] for row in rows] if whole else []
        first_bucket = 1 if whole else 0
        self.buckets = [row[first_bucket:-1] for row in rows] if stage.bucketed else []
        self.records = [row[-1] for row in rows]


class RayExecutor(Executor):
    """Runs jobs on a local Ray instance or the cluster at ``config.address``."""

    name = "ray"

    def __init__(self, config) -> None:
        super().__init__(config)
        self._started_here = False
        self._cluster_cpus = 0.0
        self._groups: dict[float, Any] = {}
        self._pools: dict[float, list[Any]] = {}
        self._blobs: dict[tuple[int, str], tuple[Job, bytes]] = {}

    def open(self) -> None:
        self._started_here = connect(self.config.address, keep_alive=self.config.keep_alive,
                                     job_metadata=run_metadata(self.config))
        import ray

        self._cluster_cpus = ray.cluster_resources().get("CPU", 0)

    def check(self, job: Job) -> None:
        """Refuse stages that could never be scheduled (before any work starts)."""
        for stage in job.stages:
            if stage.num_cpus > self._cluster_cpus:
                raise ConfigError(f"num_cpus {stage.num_cpus:g} per task of stage "
                                  f"{stage.name!r} exceeds the cluster's "
                                  f"{self._cluster_cpus:g} CPUs")

    def close(self) -> None:
        import ray

        if ray.is_initialized():
            self._kill_workers()
            self._remove_groups()
        self._blobs.clear()
        if self._started_here and not self.config.keep_alive:
            disconnect()
            self._started_here = False

    # -- running ---------------------------------------------------------------
    def run(self, job: Job, on_done: OnTaskDone | None = None) -> JobOutput:
        import ray

        refs: dict[str, _StageRefs] = {}
        submitted: list[Any] = []
        try:
            for stage in job.stages:
                submit = self._submitter(ray, job, stage)
                blob = self._stage_blob(job, stage)
                sources = job.sources.get(stage.name) or [None] * stage.tasks
                returned = []
                no_inputs = not stage.inputs
                for i in range(stage.tasks):
                    if no_inputs:
                        returned.append(submit(i, blob, _spec(i, sources[i], ())))
                    else:
                        layout, flat = _arguments(stage, i, refs)
                        returned.append(submit(i, blob, _spec(i, sources[i], layout), *flat))
                refs[stage.name] = _StageRefs(stage, returned)
                submitted.extend(refs[stage.name].records)
            return self._collect(ray, job, refs, on_done)
        except BaseException:
            for ref in submitted:
                ray.cancel(ref, force=self.config.mode == "tasks", recursive=True)
            if self.config.mode == "actors":
                self._kill_workers()  # a failed or interrupted pool is not reused
            raise

    def _submitter(self, ray: Any, job: Job, stage: StagePlan):
        name = f"{job.name}.{stage.name}"
        n_ret = _returns(stage)
        if self.config.mode == "actors":
            pool = self._worker_pool(ray, stage)
            methods = [a.run.options(name=name, num_returns=n_ret) for a in pool]
            return lambda i, *args: methods[i % len(methods)].remote(*args)
        options: dict[str, Any] = dict(name=name, num_cpus=stage.num_cpus, num_returns=n_ret,
                                       max_retries=3, retry_exceptions=False)
        group = self._group(ray, stage)
        if group is not None:
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                group, placement_group_bundle_index=-1)
        remote = remote_once(_ray_task).options(**options)
        return lambda i, *args: remote.remote(*args)

    def _collect(self, ray: Any, job: Job, refs: dict[str, _StageRefs],
                 on_done: OnTaskDone | None) -> JobOutput:
        records: list[TaskRecord] = []
        sinks: dict[str, list[Any]] = {}
        for stage in job.stages:
            sr = refs[stage.name]
            values = _get_batched(ray, sr.records, stage, on_done, records)
            if sr.pure_sink:
                sinks[stage.name] = [out for out, _ in values]
            elif stage.sink:
                sinks[stage.name] = _get(ray, sr.whole, stage)
        return JobOutput(sinks, records)

    # -- resources -------------------------------------------------------------
    def _stage_blob(self, job: Job, stage: StagePlan) -> bytes:
        """The pickled (pipeline, stage, context template) every task of ``stage`` carries."""
        key = (id(job), stage.name)
        if key not in self._blobs:
            from ray import cloudpickle  # honours pickle-by-value registrations, as Ray does

            self._blobs[key] = (job, cloudpickle.dumps(
                (job.pipeline, stage, job.context(stage, 0)), protocol=pickle.HIGHEST_PROTOCOL))
        return self._blobs[key][1]

    def _group(self, ray: Any, stage: StagePlan) -> Any:
        """The placement group that caps this stage at ``concurrency`` tasks, if one is needed."""
        fits = int(self._cluster_cpus // stage.num_cpus)
        if self.config.concurrency >= min(fits, stage.tasks):
            return None  # Ray's own resource accounting is the tighter limit already
        if stage.num_cpus not in self._groups:
            from ray.util.placement_group import placement_group

            group = placement_group([{"CPU": stage.num_cpus}] * self.config.concurrency,
                                    strategy="PACK")
            ray.get(group.ready())
            self._groups[stage.num_cpus] = group
        return self._groups[stage.num_cpus]

    def _remove_groups(self) -> None:
        from ray.util.placement_group import remove_placement_group

        groups, self._groups = self._groups, {}
        for group in groups.values():
            remove_placement_group(group)

    def _worker_pool(self, ray: Any, stage: StagePlan) -> list[Any]:
        """The session's worker actors for this CPU size, started by the first run that needs
        them (inside its meter window) and reused by later repeats, like Ray's task workers.
        """
        if stage.num_cpus in self._pools:
            return self._pools[stage.num_cpus]
        # actors hold their CPUs for life: more than the cluster can place would never start
        fits = max(1, int(self._cluster_cpus // stage.num_cpus))
        size = max(1, min(self.config.concurrency, stage.tasks, fits))
        cls = ray.remote(RayjouleWorker)
        token = uuid.uuid4().hex[:8]
        pool = [cls.options(name=f"{WORKER_NAME}-{token}-{k}", num_cpus=stage.num_cpus,
                            max_restarts=0).remote() for k in range(size)]
        self._pools[stage.num_cpus] = pool
        return pool

    def _kill_workers(self) -> None:
        import ray

        pools, self._pools = self._pools, {}
        for pool in pools.values():
            for actor in pool:
                ray.kill(actor)


def _arguments(stage: StagePlan, index: int, refs: dict[str, _StageRefs]
               ) -> tuple[tuple[tuple[str, int], ...], list[Any]]:
    """Task ``index``'s input references, flattened (Ray resolves only top-level args)."""
    layout, flat = [], []
    for up, route_name in stage.inputs:
        if route_name == "bucket":
            chosen = [buckets[index] for buckets in refs[up].buckets]
        else:
            chosen = route(refs[up].whole, route_name, index, stage.tasks)
        layout.append((up, len(chosen)))
        flat.extend(chosen)
    return tuple(layout), flat


def _get_batched(ray: Any, record_refs: Sequence[Any], stage: StagePlan,
                 on_done: OnTaskDone | None, records: list[TaskRecord]) -> list[Any]:
    """Fetch a stage's record-bearing objects in batches, reporting progress per batch."""
    values: list[Any] = []
    for start in range(0, len(record_refs), FETCH_BATCH):
        batch = [pickle.loads(b) for b in
                 _get(ray, record_refs[start:start + FETCH_BATCH], stage, start)]
        values.extend(batch)
        for value in batch:
            rec = value[1] if isinstance(value, tuple) else value
            record = TaskRecord(**rec)
            records.append(record)
            if on_done:
                on_done(record)
    return values


def _get(ray: Any, refs: Sequence[Any], stage: StagePlan, offset: int = 0) -> list[Any]:
    try:
        return ray.get(list(refs))
    except Exception as exc:
        index = _failed_index(ray, refs, offset)
        raise _failure(ray, exc, stage, index) from exc


def _failed_index(ray: Any, refs: Sequence[Any], offset: int) -> int | None:
    """Which task of the batch failed (only looked up on the failure path)."""
    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
    done = set(ready)
    for k, ref in enumerate(refs):
        if ref not in done:
            continue
        try:
            ray.get(ref, timeout=0)
        except ray.exceptions.GetTimeoutError:
            continue
        except Exception:
            return offset + k
    return None


def _failure(ray: Any, exc: BaseException, stage: StagePlan, index: int | None) -> RunFailed:
    """A readable RunFailed for a task error or a dead worker, naming the stage and task."""
    where = f"stage {stage.name!r} task {index if index is not None else '?'}"
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        return RunFailed(f"{where} raised {type(cause).__name__}: {cause}")
    if isinstance(exc, ray.exceptions.WorkerCrashedError | ray.exceptions.ActorDiedError):
        return RunFailed(f"the Ray worker running {where} died ({type(exc).__name__})")
    return RunFailed(f"{where} failed: {type(exc).__name__}: {exc}")
