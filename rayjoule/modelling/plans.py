"""What a plan reports: the chosen settings, totals, evidence and the near-optimal rivals.

Why apart from :mod:`.optimise`: the search is one concept (enumerate, constrain, pick);
the typed records it returns, and their JSON, are read by the pipeline plan, the command
and the tuner. **A flat landscape** is said so: :class:`NearOptimal` lists the feasible
plans whose median objective is within :data:`NEAR_PCT` % of the optimum's — where several
are, the data cannot pick one of them with confidence, and the output says which.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rayjoule.modelling.estimates import Estimate, Prediction, wall_of
from rayjoule.modelling.stage_model import StageModel

#: plans whose median objective is within this % of the optimum's are listed as near-optimal
NEAR_PCT = 5.0
#: at most this many of them are listed (all are counted)
NEAR_LISTED = 10


@dataclass(frozen=True)
class Plan:
    """The chosen settings per stage, the predicted pipeline totals and the evidence."""

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
    warnings: list[str] = field(default_factory=list)
    plans_considered: int = 0
    near_optimal: NearOptimal | None = None

    @property
    def wall_s(self) -> Estimate:
        return wall_of(self.exec_s, self.cold_start_s)

    def to_dict(self) -> dict[str, Any]:
        return plan_fields(self)


@dataclass(frozen=True)
class NearOptimal:
    """The feasible plans whose median objective is within ``within_pct`` % of the optimum's
    (the optimum first; at most :data:`NEAR_LISTED` listed, ``count`` counts them all).
    ``medians`` are each listed plan's median objective (joules, or seconds when time-only).
    """

    within_pct: float
    objective: str
    count: int
    settings: list[dict[str, dict[str, float]]]
    medians: list[float]
    #: stage → setting → every value it takes among all the near-optimal plans (sorted)
    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def flat(self) -> bool:
        """Whether more than one plan is within reach of the optimum."""
        return self.count > 1

    def to_dict(self) -> dict[str, Any]:
        unit = "total_j_median" if self.objective == "energy" else "wall_s_median"
        return {"within_pct": self.within_pct, "objective": self.objective,
                "count": self.count,
                "values": {s: {k: list(v) for k, v in st.items()}
                           for s, st in self.values.items()},
                "plans": [{"settings": s, unit: m}
                          for s, m in zip(self.settings, self.medians, strict=True)]}


def plan_fields(plan: Any) -> dict[str, Any]:
    """The JSON of a plan's settings, totals and evidence (a :class:`Plan`, or a pipeline plan
    that adds its fixed stages to these fields)."""
    return {
        "objective": plan.objective,
        "settings": {s: dict(v) for s, v in plan.settings.items()},
        "size": plan.size,
        "exec_s": plan.exec_s.to_dict(),
        "cold_start_s": None if plan.cold_start_s is None else plan.cold_start_s.to_dict(),
        "wall_s": plan.wall_s.to_dict(),
        "total_j": plan.total_j.to_dict() if plan.total_j else None,
        "max_seconds": plan.max_seconds,
        "confidence": plan.confidence,
        "p_within_bound": plan.p_within_bound,
        "stages": {s: p.to_dict() for s, p in plan.stages.items()},
        "held_out_error": {s: dict(p.held_out_error) for s, p in plan.stages.items()},
        "warnings": list(plan.warnings),
        "plans_considered": plan.plans_considered,
        "near_optimal": None if plan.near_optimal is None else plan.near_optimal.to_dict(),
    }


def candidate_settings(model: StageModel, g: tuple) -> dict[str, float]:
    """A candidate's settings: tasks, CPUs, and memory where it is a setting."""
    out: dict[str, float] = {"tasks": g[0], "num_cpus": g[1]}
    if model.memory_setting:
        out["memory_mb"] = g[2]
    return out


def near_optimal(feasible: tuple[np.ndarray, np.ndarray], stages: list[str],
                 models: Mapping[str, StageModel], grids: list[list[tuple]], objective: str
                 ) -> NearOptimal:
    """The feasible plans within :data:`NEAR_PCT` % of the least median objective."""
    plans, medians = feasible
    order = np.lexsort((np.arange(medians.size), medians))
    best = medians[order[0]]
    within = order[medians[order] <= best * (1 + NEAR_PCT / 100)]

    def settings(j: int) -> dict[str, dict[str, float]]:
        return {s: candidate_settings(models[s], grids[k][int(plans[j, k])])
                for k, s in enumerate(stages)}

    values: dict[str, dict[str, set[float]]] = {}
    for j in within:
        for s, st in settings(int(j)).items():
            for key, v in st.items():
                values.setdefault(s, {}).setdefault(key, set()).add(v)
    listed = within[:NEAR_LISTED]
    return NearOptimal(
        NEAR_PCT, objective, int(within.size), [settings(int(j)) for j in listed],
        [float(medians[j]) for j in listed],
        {s: {k: sorted(v) for k, v in st.items()} for s, st in values.items()})
