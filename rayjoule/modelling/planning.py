"""Planning from the store: profiles → fitted pipeline model → plans, as one typed call.

Why one call: ``python -m rayjoule.predict`` only parses and renders; choosing the
profiles, fitting them (:func:`~.pipeline.fit_pipeline`, the one fitting path) and
optimising or predicting given settings is modelling, and returns a
:class:`PredictionReport` whose :meth:`~PredictionReport.to_dict` is the JSON edge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rayjoule.core.errors import ConfigError
from rayjoule.modelling.pipeline import PipelineModel, PipelinePlan, fit_pipeline
from rayjoule.modelling.profiles import ChosenProfiles, Profile, choose_profiles
from rayjoule.runs.store import Store


@dataclass(frozen=True)
class StageSettings:
    """Settings asked for by the user (``--at``): for every stage, and per stage.

    ``common`` applies to every stage, ``by_stage`` overrides it for one; CPUs per task
    default to 1; ``memory_mb`` (MB per task) is passed on where given. Which stages exist
    is known only once the profiles are fitted, so :meth:`resolve` checks the names then.

    >>> StageSettings("tasks=2,b.tasks=8", {"tasks": 2}, {"b": {"tasks": 8}}).resolve(["a", "b"])
    {'a': {'tasks': 2, 'num_cpus': 1.0}, 'b': {'tasks': 8, 'num_cpus': 1.0}}
    """

    text: str
    common: dict[str, float] = field(default_factory=dict)
    by_stage: dict[str, dict[str, float]] = field(default_factory=dict)

    def resolve(self, stages: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stage → {tasks, num_cpus} for every stage; ConfigError naming what is wrong."""
        for stage in self.by_stage:
            if stage not in stages:
                raise ConfigError(f"--at: unknown stage {stage!r} (profiled stages: "
                                  f"{', '.join(stages)})")
        out = {}
        for stage in stages:
            merged = {"num_cpus": 1.0, **self.common, **self.by_stage.get(stage, {})}
            if "tasks" not in merged:
                raise ConfigError(f"--at {self.text!r} gives no tasks for stage {stage!r}")
            if merged["tasks"] < 1 or not merged["num_cpus"] > 0:
                raise ConfigError(f"--at {self.text!r}: tasks must be >= 1 and num_cpus > 0")
            out[stage] = {"tasks": merged["tasks"], "num_cpus": float(merged["num_cpus"])}
            if merged.get("memory_mb") is not None:
                if not merged["memory_mb"] > 0:
                    raise ConfigError(f"--at {self.text!r}: memory must be > 0 MB")
                out[stage]["memory_mb"] = float(merged["memory_mb"])
        return out


@dataclass(frozen=True)
class PredictionReport:
    """What ``predict`` found: the profiles used, the fitted model and one plan per ask."""

    workload: str
    size: float
    mode: str  # "optimise" or "at"
    chosen: ChosenProfiles
    model: PipelineModel
    predictions: tuple[PipelinePlan, ...]
    #: what the asked settings carry that the models do not take (memory where the
    #: profiles never varied it): one line each, for stderr
    input_warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"workload": self.workload, "framework": self.chosen.framework,
                "size": self.size, "mode": self.mode, "meter": self.chosen.meter,
                "profiles": self.chosen.summary(),
                "models": {s: m.to_dict() for s, m in self.model.models.items()},
                "fixed_stages": {s: f.to_dict() for s, f in self.model.fixed.items()},
                "predictions": [p.to_dict() for p in self.predictions]}


def plan_from_store(store: Store, workload: str, *, framework: str | None = None,
                    params: Mapping[str, Any] | None = None, size: float | None = None,
                    at: Sequence[StageSettings] = (), max_seconds: float | None = None,
                    confidence: float = 0.95, samples: int = 2000,
                    seed: int = 0) -> PredictionReport:
    """Fit the store's profiles of ``workload`` and optimise — or predict each of ``at``.

    ``size`` defaults to the only profiled size (ConfigError when there are several).
    Raises ModelError when the profiles cannot support the models or no plan meets
    ``max_seconds`` with ``confidence``.
    """
    if at and max_seconds is not None:
        raise ConfigError("--at predicts given settings; --max-seconds bounds the optimiser: "
                          "give one or the other")
    chosen = choose_profiles(store, workload, framework, params)
    model = fit_pipeline(chosen.profiles)
    size = profiled_size(size, chosen.profiles)
    warnings: list[str] = []
    if at:
        resolved = [s.resolve(model.order) for s in at]
        warnings = memory_warnings(model, resolved)
        predictions = tuple(model.plan(size, settings=r, samples=samples, seed=seed)
                            for r in resolved)
    else:
        predictions = (model.plan(size, max_seconds=max_seconds, confidence=confidence,
                                  samples=samples, seed=seed),)
    return PredictionReport(workload, size, "at" if at else "optimise", chosen, model,
                            predictions, tuple(warnings))


def memory_warnings(model: PipelineModel, asked: Sequence[Mapping[str, Mapping[str, Any]]]
                    ) -> list[str]:
    """One line per stage given ``memory`` that its profiles never varied (so the models do
    not take it: the prediction is the same at any memory)."""
    stages = sorted({s for a in asked for s, v in a.items() if v.get("memory_mb") is not None
                     and not (s in model.models and model.models[s].memory_setting)})
    if not stages:
        return []
    return [f"warning: memory is not a model input for stage(s) {', '.join(stages)}: their "
            "profiles never varied it, so it is ignored"]


def profiled_size(size: float | None, profiles: Sequence[Profile]) -> float:
    """``size``, or the profiles' only size when none is given."""
    if size is not None:
        if not size > 0:
            raise ConfigError(f"--size must be > 0, got {size:g}")
        return float(size)
    sizes = sorted({p.size for p in profiles})
    if len(sizes) == 1:
        return sizes[0]
    raise ConfigError(f"give --size: the profiles span sizes {sizes[0]:g}..{sizes[-1]:g}")
