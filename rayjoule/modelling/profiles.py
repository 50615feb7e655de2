"""Profiles: one observation of one stage at one setting, the input of every model.

A profile is deliberately flat (settings, size, seconds, joules) so that observations
from anywhere fit the same models: rayjoule's own profiling runs read from the store,
or another tool's timings (flexecutor's profiling JSON, :mod:`.flexecutor`). Energy
may be missing (``total_j=None``): such profiles train time-only models.

Profiling runs are ordinary stored runs whose config carries ``"profile": true``; a
pipeline run contributes one profile per stage (its result's ``stages`` list), a
single-stage run one profile named ``"map"``, and a run with repeats one profile per
repeat (the scatter between repeats is what the models' noise estimate is made of).
A run with repeats is stored twice over — each repeat as its own row (``parent_id``
set) and the combined row holding them all under ``repeats`` — so each repeat is read
once: from the combined row when it was stored, else (an interrupted run) from its own.

Imported timings (``python -m rayjoule.profile --import-flexecutor``) are stored the
same way, with ``source``, ``memory_mb`` and ``cold_start_s`` in the config or the stage
entry and no energy; they read back as time-only profiles.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import workloads
from rayjoule.core.errors import ConfigError
from rayjoule.runs.store import RunRecord, Store

SINGLE_STAGE = "map"


class ModelError(ConfigError):
    """The profiles cannot support the model asked of them (too few, too alike, none)."""


@dataclass(frozen=True)
class Profile:
    """One stage observed once: its settings, input size, wall time and (maybe) energy.

    ``wall_s`` is the stage's own time as measured — what a prediction calls ``exec_s``;
    ``cold_start_s`` is start-up time measured apart from it (serverless platforms report
    it; ``None`` where it is part of ``wall_s`` already). ``memory_mb`` is the memory per
    task where known. ``energy_kind`` is the meter's ``"measured"``/``"modelled"``.

    >>> Profile("pi", "map", tasks=4, num_cpus=1.0, memory_mb=None, size=1e6,
    ...         wall_s=2.5, total_j=90.0).setting
    (4, 1.0, 1000000.0)
    """

    workload: str
    stage: str
    tasks: int
    num_cpus: float
    memory_mb: float | None
    size: float
    wall_s: float
    total_j: float | None
    static_j: float | None = None
    dynamic_j: float | None = None
    cold_start_s: float | None = None
    source: str = "rayjoule"
    run_id: str = ""
    energy_kind: str | None = None
    #: tasks (or actors) the run allowed at once; None where unknown (imported timings)
    concurrency: int | None = None
    #: a stage that reads through a shuffle (bucket route): the task count of the stage(s)
    #: it bucket-reads in the same run — each of its tasks reads one object per upstream
    #: task — and their names; None / () for every other stage
    fan_in: int | None = None
    fan_in_stages: tuple[str, ...] = ()
    #: the summed task count of every stage it reads in the same run, whatever the route,
    #: and their names: what a one-setting stage's merge may grow with (None / () for a
    #: first stage, or imported timings)
    upstream_tasks: int | None = None
    upstream_stages: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"profile {self.run_id or '?'} of stage {self.stage!r}"
        if isinstance(self.tasks, bool) or not isinstance(self.tasks, int) or self.tasks < 1:
            raise ConfigError(f"{where}: tasks must be an integer >= 1, got {self.tasks!r}")
        for name in ("num_cpus", "size", "wall_s"):
            value = getattr(self, name)
            if not _positive(value):
                raise ConfigError(f"{where}: {name} must be a number > 0, got {value!r}")
        if self.total_j is not None and not _positive(self.total_j):
            raise ConfigError(f"{where}: total_j must be a number > 0, got {self.total_j!r}")
        if self.concurrency is not None and (isinstance(self.concurrency, bool) or not isinstance(
                self.concurrency, int) or self.concurrency < 1):
            raise ConfigError(f"{where}: concurrency must be an integer >= 1, got "
                              f"{self.concurrency!r}")
        if isinstance(self.fan_in_stages, str) or self.fan_in is not None and (
                isinstance(self.fan_in, bool) or not isinstance(self.fan_in, int)
                or self.fan_in < 1 or not self.fan_in_stages):
            raise ConfigError(f"{where}: fan_in must be an integer >= 1 with the stages it "
                              f"counts, got {self.fan_in!r} from {self.fan_in_stages!r}")
        object.__setattr__(self, "fan_in_stages", tuple(self.fan_in_stages))
        if isinstance(self.upstream_stages, str) or (
                self.upstream_tasks is None) != (not self.upstream_stages) or (
                self.upstream_tasks is not None and (
                    isinstance(self.upstream_tasks, bool)
                    or not isinstance(self.upstream_tasks, int) or self.upstream_tasks < 1)):
            raise ConfigError(f"{where}: upstream_tasks must be an integer >= 1 with the stages "
                              f"it counts (a sequence of names), got {self.upstream_tasks!r} "
                              f"from {self.upstream_stages!r}")
        object.__setattr__(self, "upstream_stages", tuple(self.upstream_stages))
        if self.memory_mb is not None and not _positive(self.memory_mb):
            raise ConfigError(f"{where}: memory_mb must be a number > 0, got {self.memory_mb!r}")
        if self.cold_start_s is not None and not (_finite(self.cold_start_s)
                                                  and self.cold_start_s >= 0):
            raise ConfigError(f"{where}: cold_start_s must be >= 0, got {self.cold_start_s!r}")

    @property
    def setting(self) -> tuple:
        """(tasks, num_cpus, size[, fan_in][, memory_mb]): what makes two profiles the same
        experiment.

        A shuffle reader's fan-in is part of it (the same tasks after a different upstream
        count is another run), and so is memory where it is known: memory is a setting
        wherever profiles vary it (where they do not, it is one value and groups nothing).
        """
        base: tuple = (self.tasks, float(self.num_cpus), float(self.size))
        if self.fan_in is not None:
            base = (*base, self.fan_in)
        return base if self.memory_mb is None else (*base, float(self.memory_mb))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Profile:
        return cls(**dict(d))


def bucket_reads(pipeline: Any) -> dict[str, tuple[str, ...]]:
    """Stage → the stages it reads through a bucket route (a shuffle), for pipelines.

    >>> from workloads import get_pipeline
    >>> bucket_reads(get_pipeline("wordcount"))
    {'reduce': ('map',)}
    """
    return stage_reads(pipeline, routes=("bucket",))


def stage_reads(pipeline: Any, routes: Sequence[str] | None = None
                ) -> dict[str, tuple[str, ...]]:
    """Stage → the stages it reads (through ``routes``; any route by default).

    >>> from workloads import get_pipeline
    >>> stage_reads(get_pipeline("wordcount"))
    {'reduce': ('map',), 'top': ('reduce',)}
    """
    out = {}
    for stage in pipeline.stages:
        ups = tuple(dict.fromkeys(e.stage for e in stage.inputs
                                  if routes is None or e.route in routes))
        if ups:
            out[stage.name] = ups
    return out


def profiles_from_store(store: Store, workload: str, framework: str | None = None,
                        params: Mapping[str, Any] | None = None,
                        exchanges: Mapping[str, Sequence[str]] | None = None,
                        reads: Mapping[str, Sequence[str]] | None = None) -> list[Profile]:
    """Every profile of ``workload`` in the store, oldest run first.

    Only finished runs whose config has ``"profile": true`` count, and with
    ``framework``/``params`` only those run on that framework with exactly those
    workload parameters (a model of Ray runs says nothing about native ones, nor one of
    ``kernel=python`` about numpy). Runs whose result has no per-stage figures are read
    as one stage, ``"map"``, at the config's ``tasks``/``num_cpus``/``size``; stage
    entries without energy give time-only profiles. ``exchanges`` (:func:`bucket_reads`
    of the pipeline) names the stages that read others through a shuffle: their profiles
    carry the upstream stages' task counts in the same run as ``fan_in``; ``reads``
    (:func:`stage_reads`) names every stage's inputs, whatever the route: each profile
    carries their summed task count as ``upstream_tasks``.
    """
    return _profiles_of_records(_profiling_records(store, workload, framework), params,
                                exchanges, reads)


def _profiling_records(store: Store, workload: str,
                       framework: str | None = None) -> list[RunRecord]:
    """The store's finished profiling runs of ``workload`` (on ``framework``), oldest first."""
    where: dict[str, Any] = {"workload": workload, "status": "ok"}
    if framework is not None:
        where["framework"] = framework
    return [r for r in store.records(**where) if r.config.get("profile")]


def _profiles_of_records(records: Sequence[RunRecord], params: Mapping[str, Any] | None,
                         exchanges: Mapping[str, Sequence[str]] | None,
                         reads: Mapping[str, Sequence[str]] | None = None) -> list[Profile]:
    rows = [r for r in records if r.result is not None
            and (params is None or dict(r.config.get("params") or {}) == dict(params))]
    combined = {r.run_id for r in rows if r.result and r.result.get("repeats")}
    profiles: list[Profile] = []
    for r in rows:
        if r.parent_id in combined:
            continue  # this repeat is read from its combined row
        for observed in (r.result or {}).get("repeats") or [r.result]:
            profiles.extend(_profiles_of(observed, r.config, r.workload, r.run_id,
                                         exchanges or {}, reads or {}))
    return profiles


@dataclass(frozen=True)
class ChosenProfiles:
    """The profiles one prediction uses, and where their energy came from."""

    framework: str | None
    profiles: list[Profile]
    #: meter name and kind over the runs ("a+b" where they differ); None: time-only
    meter: dict[str, str] | None

    def summary(self) -> dict[str, Any]:
        """Counts per stage, the sizes and the sources (rayjoule, flexecutor, …)."""
        stages: dict[str, int] = {}
        for p in self.profiles:
            stages[p.stage] = stages.get(p.stage, 0) + 1
        return {"count": len(self.profiles), "by_stage": stages,
                "sizes": sorted({p.size for p in self.profiles}),
                "sources": sorted({p.source for p in self.profiles})}


def choose_profiles(store: Store, workload: str, framework: str | None,
                    params: Mapping[str, Any] | None = None) -> ChosenProfiles:
    """The store's profiles of ``workload`` on one framework with one parameter set.

    Profiles of different frameworks or workload parameters describe different programs:
    mixing them would fit neither, so a store holding several needs ``--framework`` /
    ``--param`` to pick one. Raises ModelError when there is no profile to fit.
    """
    records = _profiling_records(store, workload)
    frameworks = sorted({r.framework for r in records})
    if framework is None and len(frameworks) > 1:
        raise ConfigError(f"the store holds profiles of {workload!r} on several frameworks "
                          f"({', '.join(frameworks)}); pick one with --framework")
    framework = framework or (frameworks[0] if frameworks else None)
    records = [r for r in records if r.framework == framework]
    if params is None:
        sets = sorted({json.dumps(r.config.get("params") or {}, sort_keys=True)
                       for r in records})
        if len(sets) > 1:
            raise ConfigError(f"the store holds profiles of {workload!r} with several workload "
                              f"parameter sets ({'; '.join(sets)}); pick one with --param")
    configs = [r.config for r in records]
    profiles = _profiles_of_records(records, params, exchanges_of(workload, configs),
                                    reads_of(workload, configs))
    if not profiles:
        where = f" on {framework}" if framework else ""
        raise ModelError(f"no profiling runs of {workload!r}{where} in {store.path}; run "
                         f"python -m rayjoule.profile --workload {workload} first (the models "
                         "need at least 5 settings over 4 task counts per stage)")
    # an imported run's meter (one that carried energy) lives in its result only
    meters = sorted({(r.meter, r.kind) for r in records if r.meter}
                    | {(m["name"], m["kind"]) for r in records if not r.meter
                       for m in [(r.result or {}).get("meter") or {}] if m.get("name")})
    meter = None if not meters else {"name": "+".join(sorted({m for m, _ in meters})),
                                     "kind": "+".join(sorted({k for _, k in meters}))}
    return ChosenProfiles(framework, profiles, meter)


def exchanges_of(workload: str, configs: Sequence[Mapping[str, Any]]
                 ) -> dict[str, tuple[str, ...]]:
    """The stages of ``workload`` that read others through a shuffle (bucket route).

    Profiles rayjoule ran come from a pipeline it can load (a failure to load it is the
    user's to see); imported timings (flexecutor's, of a name rayjoule need not know) are
    single stages and have none.
    """
    if not any(c.get("source", "rayjoule") == "rayjoule" for c in configs):
        return {}
    return bucket_reads(workloads.get_pipeline(workload))


def reads_of(workload: str, configs: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, ...]]:
    """Every stage of ``workload`` that reads others, and what it reads (any route); as
    :func:`exchanges_of`, empty for imported timings."""
    if not any(c.get("source", "rayjoule") == "rayjoule" for c in configs):
        return {}
    return stage_reads(workloads.get_pipeline(workload))


def _profiles_of(result: Mapping[str, Any], config: Mapping[str, Any], workload: str,
                 run_id: str, exchanges: Mapping[str, Sequence[str]] | None = None,
                 reads: Mapping[str, Sequence[str]] | None = None) -> list[Profile]:
    size = _size(config.get("size"), run_id)
    kind = (result.get("meter") or {}).get("kind")
    stages = result.get("stages") or [{
        "name": SINGLE_STAGE,
        "tasks": config.get("tasks", 1),
        "num_cpus": config.get("num_cpus", 1.0),
        "wall_s": result.get("wall_s"),
        "energy": result.get("energy"),
    }]
    tasks_of = {str(st.get("name", SINGLE_STAGE)): int(st.get("tasks", config.get("tasks", 1)))
                for st in stages}
    out = []
    for st in stages:
        name = str(st.get("name", SINGLE_STAGE))
        ups = tuple((exchanges or {}).get(name, ()))
        missing = [u for u in ups if u not in tasks_of]
        if missing:
            raise ConfigError(f"run {run_id}: stage {name!r} bucket-reads {', '.join(missing)}, "
                              "which the run's result does not list")
        # a run that does not list every stage this one reads cannot say what it read
        inputs = tuple((reads or {}).get(name, ()))
        if any(u not in tasks_of for u in inputs):
            inputs = ()
        energy = st.get("energy") or {}
        memory = st.get("memory_mb", config.get("memory_mb"))
        out.append(Profile(
            workload=workload, stage=name,
            tasks=int(st.get("tasks", config.get("tasks", 1))),
            num_cpus=float(st.get("num_cpus", config.get("num_cpus", 1.0))),
            memory_mb=None if memory is None else float(memory),
            size=_size(st.get("size"), run_id) if "size" in st else size,
            wall_s=st.get("wall_s"), total_j=energy.get("total_j"),
            static_j=energy.get("static_j"), dynamic_j=energy.get("dynamic_j"),
            cold_start_s=st.get("cold_start_s"),
            source=str(config.get("source", "rayjoule")), run_id=run_id,
            energy_kind=kind if energy.get("total_j") is not None else None,
            concurrency=_concurrency(config.get("concurrency")),
            fan_in=sum(tasks_of[u] for u in ups) if ups else None, fan_in_stages=ups,
            upstream_tasks=sum(tasks_of[u] for u in inputs) if inputs else None,
            upstream_stages=inputs,
        ))
    return out


def _size(value: Any, run_id: str) -> float:
    """A run's size as a number; a workload's default size (None) is one size, called 1.0."""
    if value is None:
        return 1.0
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"run {run_id}: size {value!r} is not a number") from None


def _concurrency(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: Any) -> bool:
    return _finite(value) and value > 0
