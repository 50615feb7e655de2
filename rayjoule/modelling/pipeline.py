"""A pipeline's model: every stage fitted (or fixed), and its plans with pipeline totals.

Why a floor above the per-stage fit: the optimiser (:mod:`.optimise`) chooses settings for
the stages it can model, but a pipeline also has stages profiled at one setting only (a
``max_tasks=1`` aggregate). Their time and joules still belong in the totals, so they are
estimated from their profiles (:mod:`.fixed`: linear in size, and in their upstream's task
count where that holds) and added to the plan here — one fitting path
(:func:`fit_pipeline`) for the command, the tuner and the tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rayjoule.core.errors import ConfigError
from rayjoule.modelling.estimates import Estimate, Prediction, wall_of
from rayjoule.modelling.fit import fit_stage
from rayjoule.modelling.fixed import FixedEstimate, FixedStage
from rayjoule.modelling.optimise import optimise
from rayjoule.modelling.plans import NearOptimal, plan_fields
from rayjoule.modelling.profiles import ModelError, Profile
from rayjoule.modelling.stage_model import StageModel


@dataclass(frozen=True)
class PipelinePlan:
    """Settings for every stage (pipeline order), the pipeline's totals and the evidence.

    The optimiser's :class:`~.optimise.Plan` of the modelled stages with the fixed stages'
    settings and estimates added: ``exec_s``/``cold_start_s``/``total_j`` include them
    (their intervals added, not sampled), ``fixed_stages`` lists them; ``wall_s`` is
    ``exec_s`` + ``cold_start_s``.
    """

    objective: str  # "energy" or "time"
    settings: dict[str, dict[str, float]]
    size: float
    exec_s: Estimate
    cold_start_s: Estimate | None
    total_j: Estimate | None
    max_seconds: float | None
    confidence: float
    p_within_bound: float | None
    stages: dict[str, Prediction]
    fixed_stages: dict[str, FixedEstimate]
    warnings: tuple[str, ...] = ()
    plans_considered: int = 0
    near_optimal: NearOptimal | None = None

    @property
    def wall_s(self) -> Estimate:
        return wall_of(self.exec_s, self.cold_start_s)

    def to_dict(self) -> dict[str, Any]:
        return {**plan_fields(self),
                "fixed_stages": {s: f.to_dict() for s, f in self.fixed_stages.items()}}


@dataclass(frozen=True)
class PipelineModel:
    """Per-stage models (in pipeline order) and the fixed stages' estimates."""

    models: dict[str, StageModel]
    fixed: dict[str, FixedStage] = field(default_factory=dict)
    order: tuple[str, ...] = ()

    def plan(self, size: float, settings: Mapping[str, Mapping[str, Any]] | None = None,
             max_seconds: float | None = None, confidence: float = 0.95,
             candidates: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
             samples: int = 2000, seed: int = 0) -> PipelinePlan:
        """Optimise (or, with ``settings``, predict those) and add the fixed stages.

        Raises ModelError when the fixed stages alone exceed ``max_seconds``, or (from the
        optimiser) when no plan meets the bound.
        """
        # a fixed stage that grows with its upstream's task count: its least (the fixed
        # upstreams' tasks only) here, and the rest charged to the modelled upstreams' candidates
        fixed_upstream = {s: sum(self.fixed[u].tasks for u in f.upstream_stages
                                 if u in self.fixed) for s, f in self.fixed.items()}
        least = {s: f.estimate(size, fixed_upstream[s] if f.grows_with_upstream else None)
                 for s, f in self.fixed.items()}
        fixed_t = sum(f.wall_s.median for f in least.values())
        # the part the search does not add: each fixed stage's law at its fixed upstreams,
        # unclamped, so that with what the search charges per upstream task it sums exactly
        base_t = sum(f.wall.linear(size, fixed_upstream[s]) + _median(f.cold_starts)
                     for s, f in self.fixed.items())
        base_j = sum(f.energy.linear(size, fixed_upstream[s]) for s, f in self.fixed.items()
                     if f.energy is not None)
        if max_seconds is not None and least and (fixed_t >= max_seconds
                                                  or base_t >= max_seconds):
            raise ModelError(f"the fixed stage(s) {', '.join(least)} alone take about "
                             f"{fixed_t:.3g} s, beyond --max-seconds {max_seconds:g}")
        ignored = []
        if settings is not None:
            candidates = {s: _asked(self.models[s], v) for s, v in settings.items()
                          if s in self.models}
            ignored = [s for s, f in self.fixed.items() if s in settings
                       and (settings[s]["tasks"], settings[s]["num_cpus"])
                       != (f.tasks, f.num_cpus)]
        plan = optimise(self.models, size, candidates=candidates, max_seconds=max_seconds,
                        confidence=confidence, n_samples=samples, seed=seed,
                        fixed_tasks={s: f.tasks for s, f in self.fixed.items()},
                        task_costs=self.task_costs(), base_cost=(base_t, base_j))
        fixed = {s: f.estimate(size, fixed_upstream[s] + sum(
                     int(plan.settings[u]["tasks"]) for u in f.upstream_stages
                     if u in plan.settings)) if f.grows_with_upstream else least[s]
                 for s, f in self.fixed.items()}
        chosen = {s: dict(v) for s, v in plan.settings.items()}
        warnings = list(plan.warnings)
        exec_s, cold, energy = plan.exec_s, plan.cold_start_s, plan.total_j
        for stage, f in fixed.items():
            chosen[stage] = dict(f.settings)
            warnings.extend(f.warnings)
            exec_s = exec_s.plus(f.exec_s)
            cold = f.cold_start_s if cold is None else cold.plus(f.cold_start_s)
            energy = energy.plus(f.total_j) if energy is not None else None
        for stage in ignored:
            warnings.append(f"stage {stage!r} is fixed (profiled at one setting only): its "
                            "profiled setting is predicted, not the one asked")
        if fixed:
            warnings.append(f"totals include the fixed stage(s) {', '.join(fixed)} as "
                            "estimates linear in size (and in their upstream's task count "
                            "where their profiles show it); their intervals are added, not "
                            "sampled")
        unpriced = [s for s, f in fixed.items() if f.total_j is None]
        if unpriced and plan.objective == "energy":
            warnings.append(f"the fixed stage(s) {', '.join(unpriced)} have no joules in their "
                            "profiles: the plan's joules leave them out, and the choice does "
                            "not weigh them")
        return PipelinePlan(
            objective=plan.objective,
            settings={s: chosen[s] for s in self.order if s in chosen},
            size=plan.size, exec_s=exec_s, cold_start_s=cold, total_j=energy,
            max_seconds=max_seconds, confidence=plan.confidence,
            p_within_bound=plan.p_within_bound, stages=dict(plan.stages), fixed_stages=fixed,
            warnings=tuple(warnings), plans_considered=plan.plans_considered,
            near_optimal=plan.near_optimal)


    def task_costs(self) -> dict[str, tuple[float, float]]:
        """Modelled stage → (s, J) per task of it that the fixed stages reading it pay."""
        costs: dict[str, tuple[float, float]] = {}
        for f in self.fixed.values():
            if not f.grows_with_upstream:
                continue
            per_s = f.wall.per_upstream_task or 0.0
            per_j = 0.0 if f.energy is None else f.energy.per_upstream_task or 0.0
            for u in f.upstream_stages:
                if u in self.models:
                    t0, j0 = costs.get(u, (0.0, 0.0))
                    costs[u] = (t0 + per_s, j0 + per_j)
        return costs


def _median(values: Sequence[float]) -> float:
    return float(np.median(values)) if values else 0.0


def _asked(model: StageModel, v: Mapping[str, Any]) -> dict[str, list[Any]]:
    """One stage's asked settings as a one-candidate grid; memory where it is a setting."""
    grid: dict[str, list[Any]] = {"tasks": [v["tasks"]], "num_cpus": [v.get("num_cpus", 1.0)]}
    if model.memory_setting:
        if v.get("memory_mb") is None:
            values = ", ".join(f"{m:g}" for m in model.memory_values)
            raise ConfigError(f"stage {model.stage!r}: its profiles vary memory ({values} MB); "
                              "give memory=M in --at")
        grid["memory_mb"] = [v["memory_mb"]]
    return grid


def fit_pipeline(profiles: Sequence[Profile]) -> PipelineModel:
    """Fit every stage; a stage profiled at a single setting (never varied) is fixed.

    Raises ModelError (one line naming what is missing) when a stage that was varied has
    too few profiles, or when no stage varies at all.

    >>> from rayjoule.modelling import Profile
    >>> law = [Profile("w", "map", t, 1.0, None, s, s * 8 / t + 1, 10 * (s * 8 / t + 1) + 5 * s)
    ...        for t in (1, 2, 4, 8) for s in (1.0, 2.0) for _ in range(2)]
    >>> fixed = [Profile("w", "top", 1, 1.0, None, s, 0.5, 2.0) for s in (1.0, 2.0)]
    >>> model = fit_pipeline(law + fixed)
    >>> list(model.models), list(model.fixed), model.order
    (['map'], ['top'], ('map', 'top'))
    """
    if not profiles:
        raise ModelError("no profiles to fit: run profiling first")
    order = tuple(dict.fromkeys(p.stage for p in profiles))
    by_stage = {s: [p for p in profiles if p.stage == s] for s in order}
    single = {s for s, ps in by_stage.items() if len({(p.tasks, p.num_cpus) for p in ps}) == 1}
    if len(single) == len(order):
        single = set()  # nothing varies: let fit_stage say how many more settings it needs
    models = {s: fit_stage(by_stage[s]) for s in order if s not in single}
    fixed = {s: FixedStage.fit(by_stage[s]) for s in order if s in single}
    return PipelineModel(models, fixed, order)
