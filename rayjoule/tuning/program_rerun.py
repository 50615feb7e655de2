"""The defaults and the best settings re-run side by side: joules saved, with an interval.

Why: the best of N noisy trials is partly luck (the minimum of noisy figures is biased
low), and the host drifts over a tune. Re-running both settings interleaved (A B A B …,
at least three each) gives paired differences measured under the same conditions; the
saving is their median with a bootstrap 95 % interval (:func:`rayjoule.core.stats.median_ci`).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from rayjoule.core.errors import RunFailed
from rayjoule.core.stats import median_ci
from rayjoule.tuning.program_calls import Call, ProgramCaller


@dataclass
class SideBySide:
    """Figures of the re-run: each side's medians, and the saving of best vs defaults."""

    baseline: dict[str, Any]
    best: dict[str, Any]
    saved_j: dict[str, Any]
    saved_pct: dict[str, Any]


def side_by_side(caller: ProgramCaller, defaults: dict[str, Any], best: dict[str, Any],
                 n: int, *, study: str | None = None) -> SideBySide:
    """``n`` metered calls of each, interleaved; RunFailed if any of them fails."""
    sides: dict[str, list[Call]] = {"defaults": [], "best": []}
    for _ in range(n):
        for side, settings in (("defaults", defaults), ("best", best)):
            call = caller.call(settings, study=study, label=f":rerun-{side}")
            if not call.ok:
                raise RunFailed(f"the side-by-side re-run of the {side} failed: "
                                f"{call.error or 'see run ' + call.run_id}")
            sides[side].append(call)
    a = [c.total_j for c in sides["defaults"]]
    b = [c.total_j for c in sides["best"]]
    saved = [x - y for x, y in zip(a, b, strict=True)]
    pct = [100.0 * (x - y) / x if x > 0 else 0.0 for x, y in zip(a, b, strict=True)]
    return SideBySide(_side(sides["defaults"]), _side(sides["best"]), median_ci(saved),
                      median_ci(pct))


def _side(calls: list[Call]) -> dict[str, Any]:
    """Medians over one side's calls; a stage's median over the calls that ran it."""
    per_stage: dict[str, list[float]] = defaultdict(list)
    for c in calls:
        for stage, j in c.stages.items():
            per_stage[stage].append(j)
    return {"total_j": statistics.median(c.total_j for c in calls),
            "wall_s": statistics.median(c.run.wall_s for c in calls if c.run),
            "stages": {s: statistics.median(v) for s, v in per_stage.items()},
            "rerun_j": [c.total_j for c in calls],
            "run_ids": [c.run_id for c in calls]}
