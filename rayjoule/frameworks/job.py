"""What an executor is asked to run: a pipeline, its sizes, and each stage's parallelism.

A single-stage workload arrives here as a one-stage pipeline (``workloads.as_pipeline``),
so every executor has one code path. The job is plain data: the driver builds it once per
session and every repeat runs the same chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rayjoule.core.result import TaskRecord

#: called with each finished task's record (progress bars); executors call it in batches
OnTaskDone = Callable[[TaskRecord], None]


@dataclass(frozen=True)
class StagePlan:
    """One stage's settings in a job: how many tasks and how many CPUs each reserves."""

    name: str
    tasks: int
    num_cpus: float = 1.0
    fanout: int = 1
    #: upstream edges: (stage, route)
    inputs: tuple[tuple[str, str], ...] = ()
    #: routes by which later stages read this one ("bucket" means its outputs are split)
    read_as: tuple[str, ...] = ()
    sink: bool = False

    @property
    def bucketed(self) -> bool:
        return "bucket" in self.read_as


@dataclass(frozen=True)
class Job:
    """A validated pipeline run: the pipeline object, its inputs, and the stage plans in order.

    ``sources`` holds, for every input stage, one small descriptor per task
    (``Pipeline.source``), computed once by the driver.
    """

    pipeline: Any
    size: Any
    seed: int
    params: dict[str, Any]
    stages: tuple[StagePlan, ...]
    sources: dict[str, list[Any]] = field(default_factory=dict)
    #: where native and Lithops hand data between stages (a ``workloads.DataStore`` URI)
    data_store: str | None = None

    @property
    def name(self) -> str:
        return self.pipeline.name

    @property
    def n_tasks(self) -> int:
        return sum(s.tasks for s in self.stages)

    def context(self, stage: StagePlan, index: int) -> Any:
        """The ``workloads.TaskContext`` of task ``index`` of ``stage``."""
        from workloads import TaskContext

        source = self.sources[stage.name][index] if stage.name in self.sources else None
        return TaskContext(pipeline=self.pipeline.name, stage=stage.name, index=index,
                           tasks=stage.tasks, seed=self.seed, size=self.size,
                           params=self.params, fanout=stage.fanout, source=source)


@dataclass
class JobOutput:
    """What a job returns to the driver: the sink stages' outputs and every task's record."""

    sinks: dict[str, list[Any]]
    records: list[TaskRecord]


def plan_job(pipeline: Any, size: Any, seed: int, params: dict[str, Any],
             tasks: dict[str, int], num_cpus: dict[str, float],
             data_store: str | None = None) -> Job:
    """Build the job: stage plans in dependency order with their fan-outs and sources."""
    sinks = set(pipeline.sinks())
    plans = []
    sources: dict[str, list[Any]] = {}
    for stage in pipeline.order():
        read_as = tuple(e.route for _, e in pipeline.consumers(stage.name))
        plans.append(StagePlan(
            name=stage.name, tasks=tasks[stage.name], num_cpus=float(num_cpus[stage.name]),
            fanout=pipeline.fanout(stage.name, tasks),
            inputs=tuple((e.stage, e.route) for e in stage.inputs),
            read_as=read_as, sink=stage.name in sinks,
        ))
        if not stage.inputs:
            sources[stage.name] = list(pipeline.source(stage.name, tasks[stage.name], size,
                                                       seed, params))
    return Job(pipeline, size, seed, dict(params), tuple(plans), sources, data_store)


def route(upstream: Sequence[Any], route_name: str, index: int, tasks: int) -> list[Any]:
    """Task ``index``'s share of an upstream stage's per-task handles (not buckets)."""
    from workloads import Edge, route_inputs

    return route_inputs(Edge("_", route_name), upstream, index, tasks)
