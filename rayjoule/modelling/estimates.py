"""What a prediction reports: medians with intervals, and one stage's predicted quantities.

**One quantity, named.** A stage's profiles measure its execution time (``exec_s``: for a
rayjoule profile the stage's wall time as stored; for a flexecutor import the mean over
workers of read + compute + write) and, where a platform reports them apart, cold starts
(``cold_start_s``). The time law predicts ``exec_s`` — the quantity the profiles measured,
so the held-out error (which scores ``exec_s``) can be checked against them; the cold start
is drawn from the profiles' own cold starts; ``wall_s`` is their sum, the time a run takes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A median with its central 95% interval."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, samples: np.ndarray) -> Estimate:
        lo, med, hi = np.quantile(samples, [0.025, 0.5, 0.975])
        return cls(float(med), float(lo), float(hi))

    def plus(self, other: Estimate | None) -> Estimate:
        """The sum of two estimates: medians added, interval ends added (a conservative
        interval: both ends at once are less likely than 95 %).

        >>> Estimate(1.0, 0.5, 2.0).plus(Estimate(3.0, 2.0, 4.0))
        Estimate(median=4.0, low=2.5, high=6.0)
        """
        if other is None:
            return self
        return Estimate(self.median + other.median, self.low + other.low,
                        self.high + other.high)

    def to_dict(self) -> dict[str, Any]:
        return {"median": self.median, "ci95": [self.low, self.high]}


def wall_of(exec_s: Estimate, cold_start_s: Estimate | None) -> Estimate:
    """``wall_s`` = ``exec_s`` + ``cold_start_s`` (just ``exec_s`` without cold starts)."""
    return exec_s.plus(cold_start_s)


def _opt(e: Estimate | None) -> dict[str, Any] | None:
    return None if e is None else e.to_dict()


@dataclass(frozen=True)
class Prediction:
    """One stage at one setting and size: execution time, cold start, wall time (their sum)
    and energy (None when time-only). ``cold_start_s`` is None where the profiles kept no
    cold starts apart (rayjoule's own: they are inside ``exec_s``)."""

    stage: str
    settings: dict[str, float]
    size: float
    exec_s: Estimate
    cold_start_s: Estimate | None
    total_j: Estimate | None
    held_out_error: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def wall_s(self) -> Estimate:
        return wall_of(self.exec_s, self.cold_start_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "settings": dict(self.settings),
            "size": self.size,
            "exec_s": self.exec_s.to_dict(),
            "cold_start_s": _opt(self.cold_start_s),
            "wall_s": self.wall_s.to_dict(),
            "total_j": _opt(self.total_j),
            "held_out_error": dict(self.held_out_error),
            "warnings": list(self.warnings),
        }
