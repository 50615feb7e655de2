"""A pipeline's model: every stage fitted (or fixed), and its plans with pipeline totals.

Why a floor above the per-stage fit: the optimiser (:mod:`.optimise`) chooses settings for
the stages it can model, but a pipeline also has stages profiled at one setting only (a
``max_tasks=1`` aggregate). Their time and joules still belong in the totals, so they are
estimated from their profiles, linear in size, and added to the plan here — one fitting
path (:func:`fit_pipeline`) for the command, the tuner and the tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rayjoule.core.errors import ConfigError
from rayjoule.modelling.estimates import wall_of
from rayjoule.modelling.fit import Estimate, Prediction, StageModel, fit_stage
from rayjoule.modelling.optimise import optimise
from rayjoule.modelling.plans import NearOptimal, plan_fields
from rayjoule.modelling.profiles import ModelError, Profile

#: (intercept, slope, residual sd) of a line in size
Line = tuple[float, float, float]


@dataclass(frozen=True)
class FixedEstimate:
    """A fixed stage at one size: its one setting, exec time, cold start (None where its
    profiles kept none apart), wall time (their sum) and joules (None: time only)."""

    stage: str
    settings: dict[str, float]
    exec_s: Estimate
    cold_start_s: Estimate | None
    total_j: Estimate | None
    warnings: tuple[str, ...] = ()

    @property
    def wall_s(self) -> Estimate:
        return wall_of(self.exec_s, self.cold_start_s)

    def to_dict(self) -> dict[str, Any]:
        return {"settings": dict(self.settings), "exec_s": self.exec_s.to_dict(),
                "cold_start_s": None if self.cold_start_s is None
                else self.cold_start_s.to_dict(),
                "wall_s": self.wall_s.to_dict(),
                "total_j": None if self.total_j is None else self.total_j.to_dict(),
                "warnings": list(self.warnings)}


@dataclass(frozen=True)
class FixedStage:
    """A stage profiled at one setting only: estimated from its profiles, linear in size.

    The optimiser cannot choose its settings (a ``max_tasks=1`` aggregate); its time and
    joules still belong in a pipeline's totals.
    """

    stage: str
    tasks: int
    num_cpus: float
    sizes: tuple[float, ...]
    wall: Line
    energy: Line | None
    #: the cold starts its profiles kept apart (() where none did)
    cold_starts: tuple[float, ...] = ()

    @classmethod
    def fit(cls, profiles: Sequence[Profile]) -> FixedStage:
        sizes = np.array([p.size for p in profiles])

        def line(y: np.ndarray) -> Line:
            if np.ptp(sizes) == 0:
                return float(y.mean()), 0.0, float(y.std(ddof=1)) if y.size > 1 else 0.0
            slope, icept = np.polyfit(sizes, y, 1)
            resid = y - (icept + slope * sizes)
            sd = float(np.sqrt(resid @ resid / (y.size - 2))) if y.size > 2 else 0.0
            return float(icept), float(slope), sd

        e = [p.total_j for p in profiles if p.total_j is not None]
        return cls(profiles[0].stage, profiles[0].tasks, profiles[0].num_cpus,
                   tuple(sorted(set(sizes.tolist()))), line(np.array([p.wall_s for p in profiles])),
                   line(np.array(e)) if len(e) == len(profiles) else None,
                   tuple(p.cold_start_s for p in profiles if p.cold_start_s is not None))

    def estimate(self, size: float) -> FixedEstimate:
        """Its time and joules at ``size``, with a warning when that is outside the profiles."""
        warnings = []
        if not self.sizes[0] <= size <= self.sizes[-1]:
            warnings.append(f"stage {self.stage!r} (fixed): size={size:g} is outside the "
                            f"profiled range {self.sizes[0]:g}..{self.sizes[-1]:g}; its "
                            "estimate extrapolates")
        wall = _at(self.wall, size)
        assert wall is not None
        cold = Estimate.of(np.array(self.cold_starts)) if self.cold_starts else None
        return FixedEstimate(self.stage, {"tasks": self.tasks, "num_cpus": self.num_cpus},
                             wall, cold, _at(self.energy, size), tuple(warnings))

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "tasks": self.tasks, "num_cpus": self.num_cpus,
                "sizes": list(self.sizes), "form": "intercept + slope × size",
                "wall_s": dict(zip(("intercept", "slope", "resid_sd"), self.wall, strict=True)),
                "total_j": None if self.energy is None else
                dict(zip(("intercept", "slope", "resid_sd"), self.energy, strict=True))}


def _at(c: Line | None, size: float) -> Estimate | None:
    if c is None:
        return None
    mid = max(c[0] + c[1] * size, 0.0)
    return Estimate(mid, max(mid - 1.96 * c[2], 0.0), mid + 1.96 * c[2])


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
        fixed = {s: f.estimate(size) for s, f in self.fixed.items()}
        fixed_t = sum(f.wall_s.median for f in fixed.values())
        bound = max_seconds
        if max_seconds is not None and fixed:
            bound = max_seconds - fixed_t
            if bound <= 0:
                raise ModelError(f"the fixed stage(s) {', '.join(fixed)} alone take about "
                                 f"{fixed_t:.3g} s, beyond --max-seconds {max_seconds:g}")
        ignored = []
        if settings is not None:
            candidates = {s: _asked(self.models[s], v) for s, v in settings.items()
                          if s in self.models}
            ignored = [s for s, f in fixed.items() if s in settings
                       and (settings[s]["tasks"], settings[s]["num_cpus"])
                       != (f.settings["tasks"], f.settings["num_cpus"])]
        plan = optimise(self.models, size, candidates=candidates, max_seconds=bound,
                        confidence=confidence, n_samples=samples, seed=seed,
                        fixed_tasks={s: int(f.settings["tasks"]) for s, f in fixed.items()})
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
                            "size-linear estimates; their intervals are added, not sampled")
        return PipelinePlan(
            objective=plan.objective,
            settings={s: chosen[s] for s in self.order if s in chosen},
            size=plan.size, exec_s=exec_s, cold_start_s=cold, total_j=energy,
            max_seconds=max_seconds, confidence=plan.confidence,
            p_within_bound=plan.p_within_bound, stages=dict(plan.stages), fixed_stages=fixed,
            warnings=tuple(warnings), plans_considered=plan.plans_considered,
            near_optimal=plan.near_optimal)


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
