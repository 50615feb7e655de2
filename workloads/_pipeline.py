"""The pipeline contract: a DAG of named stages, each a map with its own parallelism.

A :class:`Pipeline` is a tuple of :class:`Stage` s wired by :class:`Edge` s. A stage runs
``tasks`` copies of one module-level function ``run(ctx, inputs)``; task ``i`` receives, for
every upstream stage, the share of that stage's outputs its edge's *route* gives it
(:func:`workloads._routes.route_inputs`). Stages without inputs are *input stages*: each
task gets one small descriptor from ``Pipeline.source`` (which blocks of the data to
generate or read). The
outputs of the *sink* stages (the ones nobody reads) go to ``Pipeline.summary``.

Every framework runs the same steps, which :func:`workloads._serial.run_serial` spells out
in-process::

    size, params, tasks = pipeline.validate(size, tasks, params, seed)
    for stage in pipeline.order():
        sources = pipeline.source(stage.name, n, size, seed, params)   # input stages only
        outputs[stage.name] = [stage.run(ctx_i, route(i)) for i in range(n)]
    summary = pipeline.summary({sink: outputs[sink] for sink in pipeline.sinks()})

Determinism is the stages' job, as for workloads: work is cut into fixed blocks or items
(models, words, frames) seeded by ``[seed, item]``, never by task, so any per-stage
parallelism gives the same summary. Stage functions are module-level so pickle, Ray's
cloudpickle and Lithops ship them by reference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workloads._base import (
    Param,
    Parameterised,
    ParamValue,
    Prepare,
    Size,
    Workload,
    WorkloadError,
    check_seed,
)
from workloads._routes import ROUTES


@dataclass(frozen=True)
class Edge:
    """How a stage's tasks receive one upstream stage's outputs.

    ``"all"`` broadcasts every output to every task (a fitted model to all testers);
    ``"split"`` hands each task a contiguous share of the outputs; ``"bucket"`` is a shuffle:
    each upstream output is a sequence of exactly ``tasks`` buckets and task ``i`` gets
    bucket ``i`` of every output.
    """

    stage: str
    route: str = "all"


@dataclass(frozen=True)
class TaskContext:
    """What one task knows about its place in the run; small and picklable.

    ``fanout`` is how many buckets this stage's output must hold (the task count of the stage
    that bucket-reads it, 1 if none); ``source`` is this task's descriptor for input stages.
    """

    pipeline: str
    stage: str
    index: int
    tasks: int
    seed: int
    size: Size
    params: Mapping[str, Any]
    fanout: int = 1
    source: Any = None


StageRun = Callable[[TaskContext, dict[str, list[Any]]], Any]
Source = Callable[[str, int, Size, int, dict[str, ParamValue]], list[Any]]
Summary = Callable[[dict[str, list[Any]]], dict[str, Any]]


@dataclass(frozen=True)
class Stage:
    """One named map in a pipeline: ``run(ctx, inputs) -> output``, once per task.

    ``inputs`` maps to ``{upstream stage: routed outputs}``; an empty tuple makes this an
    input stage fed by ``Pipeline.source``. ``max_tasks`` caps stages that must not be split
    (an aggregate that sees every model).
    """

    name: str
    run: StageRun
    inputs: tuple[Edge, ...] = ()
    default_tasks: int = 1
    max_tasks: int | None = None
    description: str = ""


@dataclass(frozen=True)
class Pipeline(Parameterised):
    """A registered multi-stage application; ``__post_init__`` rejects a malformed DAG.

    ``workload`` is set only by :func:`as_pipeline`: validation then delegates to the
    wrapped single-stage workload so both views accept exactly the same sizes and params.
    """

    kind_label = "pipeline"

    name: str
    description: str
    size_meaning: str
    default_size: Size
    params: tuple[Param, ...]
    stages: tuple[Stage, ...]
    source: Source
    summary: Summary
    size_type: type = int
    min_size: float = 1
    prepare: Prepare | None = field(default=None, compare=False)
    workload: Workload | None = None

    def __post_init__(self) -> None:
        """Check names, edges, routes, task bounds and acyclicity once, at definition."""
        if not self.stages:
            raise WorkloadError(f"pipeline {self.name!r} has no stages")
        seen: set[str] = set()
        for stage in self.stages:
            where = f"pipeline {self.name!r}, stage {stage.name!r}"
            if not isinstance(stage.name, str) or not stage.name.replace("-", "_").isidentifier():
                raise WorkloadError(f"{where}: a stage name must be letters, digits, - or _")
            if stage.name in seen:
                raise WorkloadError(f"{where}: duplicate stage name")
            seen.add(stage.name)
            if not callable(stage.run):
                raise WorkloadError(f"{where}: run is not callable")
            if not isinstance(stage.default_tasks, int) or stage.default_tasks < 1:
                raise WorkloadError(f"{where}: default_tasks must be an int >= 1")
            if stage.max_tasks is not None and not (
                isinstance(stage.max_tasks, int) and stage.max_tasks >= stage.default_tasks
            ):
                raise WorkloadError(f"{where}: max_tasks must be an int >= default_tasks")
        names = [s.name for s in self.stages]
        for stage in self.stages:
            where = f"pipeline {self.name!r}, stage {stage.name!r}"
            upstream = [edge.stage for edge in stage.inputs]
            if len(set(upstream)) != len(upstream):
                raise WorkloadError(f"{where}: reads the same stage twice")
            for edge in stage.inputs:
                if edge.stage not in seen:
                    raise WorkloadError(
                        f"{where}: input stage {edge.stage!r} does not exist "
                        f"(stages: {', '.join(names)})"
                    )
                if edge.route not in ROUTES:
                    raise WorkloadError(
                        f"{where}: route {edge.route!r} for input {edge.stage!r} must be one "
                        f"of {', '.join(ROUTES)}"
                    )
        self.order()  # raises on a cycle

    def order(self) -> list[Stage]:
        """Stages in dependency order; among ready stages, definition order (stable).

        >>> from workloads import get_pipeline
        >>> [s.name for s in get_pipeline("ml").order()]
        ['pca', 'train', 'aggregate', 'test']
        """
        done: set[str] = set()
        ordered: list[Stage] = []
        while len(ordered) < len(self.stages):
            ready = [
                s for s in self.stages
                if s.name not in done and all(e.stage in done for e in s.inputs)
            ]
            if not ready:
                raise WorkloadError(f"pipeline {self.name!r}, stage {self._cycle(done)[0]!r}: "
                                    f"the stages {' -> '.join(self._cycle(done))} form a cycle")
            ordered.append(ready[0])
            done.add(ready[0].name)
        return ordered

    def _cycle(self, done: set[str]) -> list[str]:
        """One cycle among the stages that can never start, as a closed path of names."""
        waiting = {s.name: [e.stage for e in s.inputs if e.stage not in done]
                   for s in self.stages if s.name not in done}
        path, node = [], next(iter(waiting))
        while node not in path:  # every waiting stage waits for another waiting stage
            path.append(node)
            node = waiting[node][0]
        return path[path.index(node):] + [node]

    def stage(self, name: str) -> Stage:
        """The stage called ``name``; an unknown name raises WorkloadError listing them."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise WorkloadError(
            f"unknown stage {name!r} in pipeline {self.name!r} (stages: {self._stage_list()})"
        )

    def sinks(self) -> list[str]:
        """Stages whose outputs no stage reads, in definition order: they feed ``summary``."""
        read = {edge.stage for stage in self.stages for edge in stage.inputs}
        return [s.name for s in self.stages if s.name not in read]

    def consumers(self, stage: str) -> list[tuple[Stage, Edge]]:
        """The stages that read ``stage``, each with the edge they read it through."""
        self.stage(stage)
        return [(s, e) for s in self.stages for e in s.inputs if e.stage == stage]

    def fanout(self, stage: str, tasks: Mapping[str, int]) -> int:
        """How many buckets ``stage``'s outputs must hold: its bucket-reader's task count.

        Two bucket-readers with different task counts cannot both be served.
        """
        counts = {tasks[s.name] for s, e in self.consumers(stage) if e.route == "bucket"}
        if len(counts) > 1:
            readers = [s.name for s, e in self.consumers(stage) if e.route == "bucket"]
            raise WorkloadError(
                f"pipeline {self.name!r}: stages {', '.join(readers)} bucket-read stage "
                f"{stage!r} and so need the same number of tasks, not {sorted(counts)}"
            )
        return counts.pop() if counts else 1

    def validate(
        self,
        size: Any = None,
        tasks: int | str | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        seed: Any = 0,
    ) -> tuple[Size, dict[str, ParamValue], dict[str, int]]:
        """Fill defaults, convert and check; return ``(size, params, tasks_by_stage)``.

        An int ``tasks`` sets every stage (a capped stage gets ``min(tasks, max_tasks)``);
        a mapping sets the named stages and leaves the rest at ``default_tasks``.

        >>> from workloads import get_pipeline
        >>> get_pipeline("ml").validate(None, 3)[2]
        {'pca': 1, 'train': 3, 'aggregate': 1, 'test': 3}
        >>> get_pipeline("ml").validate(None, {"test": "2"})[2]["test"]
        2
        """
        check_seed(seed)
        by_stage = self._tasks(tasks)
        if self.workload is not None:
            size, values = self.workload.validate(size, by_stage[self.stages[0].name], params,
                                                  seed)
        else:
            size, values = self.resolve_size_params(size, params)
        for stage in self.stages:
            self.fanout(stage.name, by_stage)
        return size, values, by_stage

    def _tasks(self, tasks: Any) -> dict[str, int]:
        """Per-stage task counts from None, one int, or a mapping of stage -> int."""
        if tasks is None or isinstance(tasks, Mapping):
            named = self._per_stage("tasks", tasks or {}, int, 1)
            out = {s.name: named.get(s.name, s.default_tasks) for s in self.stages}
        else:
            one = Param("tasks", int, 1, "tasks", minimum=1).convert(tasks, what="tasks")
            assert isinstance(one, int)
            out = {s.name: min(one, s.max_tasks or one) for s in self.stages}
        for stage in self.stages:
            if stage.max_tasks is not None and out[stage.name] > stage.max_tasks:
                raise WorkloadError(
                    f"tasks for stage {stage.name!r} of pipeline {self.name!r} must be "
                    f"<= {stage.max_tasks}, not {out[stage.name]}"
                )
        return out

    def validate_per_stage(
        self, name: str, values: Any, *, default: float = 1.0
    ) -> dict[str, float]:
        """Per-stage floats > 0 (e.g. ``num_cpus``): one number for all, or stage -> number.

        >>> from workloads import get_pipeline
        >>> get_pipeline("wordcount").validate_per_stage("num_cpus", {"map": "0.5"})
        {'map': 0.5, 'reduce': 1.0, 'top': 1.0}
        """
        if values is None or isinstance(values, Mapping):
            named = self._per_stage(name, values or {}, float, 0)
            return {s.name: float(named.get(s.name, default)) for s in self.stages}
        one = Param(name, float, default, name, above=0).convert(values, what=name)
        return {s.name: float(one) for s in self.stages}  # type: ignore[arg-type]

    def _per_stage(self, what: str, values: Mapping[str, Any], kind: type,
                   bound: float) -> dict[str, Any]:
        """Convert a stage -> value mapping; unknown stages and bad values raise."""
        out = {}
        for stage, value in values.items():
            if stage not in {s.name for s in self.stages}:
                raise WorkloadError(
                    f"unknown stage {stage!r} in {what} for pipeline {self.name!r} "
                    f"(stages: {self._stage_list()})"
                )
            limit = {"minimum": 1} if kind is int else {"above": bound}
            param = Param(what, kind, kind(1), what, **limit)  # type: ignore[arg-type]
            out[stage] = param.convert(value, what=f"{what} for stage {stage!r}")
        return out

    def _stage_list(self) -> str:
        return ", ".join(s.name for s in self.stages)


@dataclass(frozen=True)
class _WorkloadStep:
    """A wrapped workload's map, partition or summary, callable with the pipeline signature.

    A frozen dataclass, not a closure, so it pickles by reference plus the (small) Workload,
    and two wrappers of the same workload compare equal.
    """

    workload: Workload
    step: str

    def __call__(self, *args: Any) -> Any:
        wl = self.workload
        if self.step == "map":
            ctx, _inputs = args
            return wl.map(ctx.source)
        if self.step == "source":
            _stage, tasks, size, seed, params = args
            return wl.partition(tasks, size, seed, params)
        (outputs,) = args
        return wl.summary(wl.reduce(outputs["map"]))


def as_pipeline(workload: Workload) -> Pipeline:
    """A single-stage workload as a one-stage pipeline whose stage is called ``map``.

    >>> from workloads import get, run_serial
    >>> p = as_pipeline(get("primes"))
    >>> run_serial(p, 100, {"map": 3}, 0, {})
    {'limit': 100, 'count': 25, 'max_prime': 97}
    """
    return Pipeline(
        name=workload.name,
        description=workload.description,
        size_meaning=workload.size_meaning,
        default_size=workload.default_size,
        params=workload.params,
        stages=(Stage("map", _WorkloadStep(workload, "map"), (), 1, None, workload.description),),
        source=_WorkloadStep(workload, "source"),
        summary=_WorkloadStep(workload, "summary"),
        size_type=workload.size_type,
        min_size=workload.min_size,
        prepare=workload.prepare,
        workload=workload,
    )
