"""A stage profiled at one setting only: its law in size (and in its upstream's task count).

Why apart from :mod:`.pipeline`: the pipeline floor adds fixed stages to a plan; how one is
fitted — which law, chosen by held-out error — is a concern of its own. The optimiser cannot
choose such a stage's settings (a ``max_tasks=1`` aggregate), but its time and joules belong
in a pipeline's totals, so they are estimated from its profiles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import lsq_linear

from rayjoule.core.errors import ConfigError
from rayjoule.modelling.estimates import Estimate, wall_of
from rayjoule.modelling.profiles import Profile


@dataclass(frozen=True)
class FixedLaw:
    """``intercept + slope·size [+ per_upstream_task·u]`` and its residual sd: a fixed
    stage's time or joules, ``u`` the summed task count of the stages it reads."""

    intercept: float
    slope: float
    resid_sd: float
    per_upstream_task: float | None = None

    def linear(self, size: float, upstream_tasks: float = 0.0) -> float:
        """The law's value, not clamped at zero (what a sum of its parts needs)."""
        return (self.intercept + self.slope * size
                + (self.per_upstream_task or 0.0) * upstream_tasks)

    def at(self, size: float, upstream_tasks: float = 0.0) -> Estimate:
        mid = max(self.linear(size, upstream_tasks), 0.0)
        return Estimate(mid, max(mid - 1.96 * self.resid_sd, 0.0), mid + 1.96 * self.resid_sd)

    def to_dict(self) -> dict[str, Any]:
        out = {"intercept": self.intercept, "slope": self.slope, "resid_sd": self.resid_sd}
        if self.per_upstream_task is not None:
            out["per_upstream_task"] = self.per_upstream_task
        return out


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
    #: the upstream task count the estimate is for (None: its law does not depend on it)
    upstream_tasks: int | None = None

    @property
    def wall_s(self) -> Estimate:
        return wall_of(self.exec_s, self.cold_start_s)

    def to_dict(self) -> dict[str, Any]:
        out = {"settings": dict(self.settings), "exec_s": self.exec_s.to_dict(),
               "cold_start_s": None if self.cold_start_s is None
               else self.cold_start_s.to_dict(),
               "wall_s": self.wall_s.to_dict(),
               "total_j": None if self.total_j is None else self.total_j.to_dict(),
               "warnings": list(self.warnings)}
        if self.upstream_tasks is not None:
            out["upstream_tasks"] = self.upstream_tasks
        return out


@dataclass(frozen=True)
class FixedStage:
    """A stage profiled at one setting only: estimated from its profiles, linear in size —
    and in its upstream's task count where that buys held-out accuracy.

    The optimiser cannot choose its settings (a ``max_tasks=1`` aggregate); its time and
    joules still belong in a pipeline's totals. A merge that walks every upstream task's
    partial result costs more the more upstream tasks there are, which a law in size alone
    cannot see (its upstream's task count then looks free to the optimiser). Where the profiles
    vary that count (three values or more), the law with ``per_upstream_task`` competes with
    the plain one by leave-one-setting-out error and is kept only when it beats it by more
    than one standard error; the optimiser then charges the upstream stages' candidates for
    it (:meth:`PipelineModel.plan`).
    """

    stage: str
    tasks: int
    num_cpus: float
    sizes: tuple[float, ...]
    wall: FixedLaw
    energy: FixedLaw | None
    #: the cold starts its profiles kept apart (() where none did)
    cold_starts: tuple[float, ...] = ()
    #: the stages whose summed task count the laws use (() where they do not)
    upstream_stages: tuple[str, ...] = ()
    upstream_range: tuple[int, int] | None = None
    #: leave-one-setting-out error of the wall law without and with the upstream term
    held_out_error: dict[str, Any] | None = None

    @classmethod
    def fit(cls, profiles: Sequence[Profile]) -> FixedStage:
        sizes = np.array([p.size for p in profiles], float)
        walls = np.array([p.wall_s for p in profiles], float)
        e = [p.total_j for p in profiles if p.total_j is not None]
        energies = np.array(e, float) if len(e) == len(profiles) else None
        ups = {p.upstream_stages for p in profiles}
        counts = [p.upstream_tasks for p in profiles]
        upstream = (np.array(counts, float) if len(ups) == 1 and None not in counts
                    and len(set(counts)) >= MIN_UPSTREAM_VALUES else None)
        held_out = None
        if upstream is not None:
            plain = _held_out(sizes, upstream, walls, with_upstream=False)
            grows = _held_out(sizes, upstream, walls, with_upstream=True)
            held_out = {"method": "leave one (size, upstream tasks) setting out",
                        "quantity": "exec_s", "size_only_mape_pct": plain[0],
                        "with_upstream_mape_pct": grows[0], "with_upstream_se_pct": grows[1]}
            if not grows[0] + grows[1] < plain[0]:
                upstream = None
        first = profiles[0]
        return cls(first.stage, first.tasks, first.num_cpus,
                   tuple(sorted(set(sizes.tolist()))), _law(sizes, upstream, walls),
                   None if energies is None else _law(sizes, upstream, energies),
                   tuple(p.cold_start_s for p in profiles if p.cold_start_s is not None),
                   first.upstream_stages if upstream is not None else (),
                   None if upstream is None else (int(upstream.min()), int(upstream.max())),
                   held_out)

    @property
    def grows_with_upstream(self) -> bool:
        return bool(self.upstream_stages)

    def estimate(self, size: float, upstream_tasks: int | None = None) -> FixedEstimate:
        """Its time and joules at ``size`` (after ``upstream_tasks`` upstream tasks, which a
        law that grows with them needs), with a warning when outside the profiles."""
        warnings = []
        if not self.sizes[0] <= size <= self.sizes[-1]:
            warnings.append(f"stage {self.stage!r} (fixed): size={size:g} is outside the "
                            f"profiled range {self.sizes[0]:g}..{self.sizes[-1]:g}; its "
                            "estimate extrapolates")
        u = 0
        if self.upstream_range is not None:
            if upstream_tasks is None:
                raise ConfigError(f"stage {self.stage!r} (fixed) grows with the task count of "
                                  f"{', '.join(self.upstream_stages)}; give it")
            u = upstream_tasks
            lo, hi = self.upstream_range
            if not lo <= u <= hi:
                warnings.append(f"stage {self.stage!r} (fixed): {u} upstream tasks is outside "
                                f"the profiled range {lo}..{hi}; its estimate extrapolates")
        cold = Estimate.of(np.array(self.cold_starts)) if self.cold_starts else None
        return FixedEstimate(self.stage, {"tasks": self.tasks, "num_cpus": self.num_cpus},
                             self.wall.at(size, u), cold,
                             None if self.energy is None else self.energy.at(size, u),
                             tuple(warnings),
                             upstream_tasks if self.upstream_range is not None else None)

    def to_dict(self) -> dict[str, Any]:
        out = {"stage": self.stage, "tasks": self.tasks, "num_cpus": self.num_cpus,
               "sizes": list(self.sizes),
               "form": "intercept + slope × size" + (
                   " + per_upstream_task × upstream tasks" if self.grows_with_upstream else ""),
               "wall_s": self.wall.to_dict(),
               "total_j": None if self.energy is None else self.energy.to_dict()}
        if self.grows_with_upstream:
            out["upstream_stages"] = list(self.upstream_stages)
            out["upstream_range"] = list(self.upstream_range or ())
        if self.held_out_error is not None:
            out["held_out_error"] = dict(self.held_out_error)
        return out


#: upstream task counts a fixed stage's profiles must show before the count may enter its law
MIN_UPSTREAM_VALUES = 3


def _law(sizes: np.ndarray, upstream: np.ndarray | None, y: np.ndarray) -> FixedLaw:
    """The least-squares law of ``y`` in size (and upstream tasks, slope >= 0), with the
    residual sd over the degrees of freedom its fitted coefficients leave."""
    coef, n_free = _solve(sizes, upstream, y)
    resid = y - _design(sizes, upstream) @ coef
    dof = y.size - n_free
    sd = float(np.sqrt(resid @ resid / dof)) if dof > 0 else 0.0
    return FixedLaw(float(coef[0]), float(coef[1]), sd,
                    None if upstream is None else float(coef[2]))


def _design(sizes: np.ndarray, upstream: np.ndarray | None) -> np.ndarray:
    cols = [np.ones_like(sizes), sizes]
    return np.column_stack(cols if upstream is None else [*cols, upstream])


def _solve(sizes: np.ndarray, upstream: np.ndarray | None, y: np.ndarray
           ) -> tuple[np.ndarray, int]:
    """[intercept, slope in size(, per upstream task >= 0)] and how many of them were fitted
    (one size: no size slope, held at zero)."""
    x = _design(sizes, upstream)
    free = [0, 2] if np.ptp(sizes) == 0 and upstream is not None else \
        [0] if np.ptp(sizes) == 0 else list(range(x.shape[1]))
    lower = np.array([-np.inf, -np.inf, 0.0][:x.shape[1]])
    coef = np.zeros(x.shape[1])
    coef[free] = lsq_linear(x[:, free], y, bounds=(lower[free], np.inf)).x
    return coef, len(free)


def _held_out(sizes: np.ndarray, upstream: np.ndarray, y: np.ndarray, with_upstream: bool
              ) -> tuple[float, float]:
    """Leave-one-setting-out error (%) of the law (with the upstream term or without), and
    its standard error: each (size, upstream tasks) setting's mean predicted by a fit on the
    other settings."""
    keys = list(zip(sizes.tolist(), upstream.tolist(), strict=True))
    errs = []
    for g in sorted(set(keys)):
        out = np.array([k == g for k in keys])
        coef, _ = _solve(sizes[~out], upstream[~out] if with_upstream else None, y[~out])
        x = _design(sizes[out], upstream[out] if with_upstream else None)
        mean = float(y[out].mean())
        errs.append(abs(float((x @ coef).mean()) - mean) / mean * 100)
    errs_a = np.array(errs)
    return float(errs_a.mean()), float(errs_a.std(ddof=1) / np.sqrt(errs_a.size))
