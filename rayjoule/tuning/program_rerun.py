"""The defaults and the finalists re-run side by side: the best confirmed, joules saved.

Why: the best of N noisy trials is partly luck (the minimum of noisy figures is biased
low, and a setting that was merely lucky once wins), and the host drifts over a tune.
Re-running the defaults and the few best settings interleaved (D A B D A B …, at least
three each) picks the best by the medians of calls measured under the same conditions,
and the saving is the median of paired differences (defaults − best, same round) with a
bootstrap 95 % interval (:func:`rayjoule.core.stats.median_ci`).
"""

from __future__ import annotations

import json
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
    #: every finalist's re-run figures, in the order they came in (``settings`` added)
    finalists: list[dict[str, Any]]


def settings_key(settings: dict[str, Any]) -> str:
    """One string per distinct setting (trials that drew the same values share it)."""
    return json.dumps(settings, sort_keys=True, default=str)


def side_by_side(caller: ProgramCaller, defaults: dict[str, Any],
                 finalists: list[dict[str, Any]], n: int, *,
                 study: str | None = None) -> SideBySide:
    """``n`` rounds of one metered call of the defaults and of each finalist, interleaved;
    the best is the finalist with the least median joules. A finalist equal to the
    defaults shares their calls. RunFailed if any call fails."""
    if not finalists:
        raise ValueError("side_by_side needs at least one finalist")
    sides: dict[str, list[Call]] = defaultdict(list)
    order = [settings_key(defaults)] + [k for k in dict.fromkeys(map(settings_key, finalists))
                                        if k != settings_key(defaults)]
    values = {settings_key(s): s for s in (defaults, *finalists)}
    for _ in range(n):
        for key in order:
            side = "defaults" if key == order[0] else "finalist"
            call = caller.call(values[key], study=study, label=f":rerun-{side}")
            if not call.ok:
                raise RunFailed(f"the side-by-side re-run of the {side} {values[key]} failed: "
                                f"{call.error or 'see run ' + call.run_id}")
            sides[key].append(call)
    figures = {k: {"settings": values[k], **_side(sides[k])} for k in order}
    best_key = min((settings_key(f) for f in finalists),
                   key=lambda k: figures[k]["total_j"])
    a = [c.total_j for c in sides[order[0]]]
    b = [c.total_j for c in sides[best_key]]
    saved = [x - y for x, y in zip(a, b, strict=True)]
    pct = [100.0 * (x - y) / x if x > 0 else 0.0 for x, y in zip(a, b, strict=True)]
    return SideBySide(figures[order[0]], figures[best_key], median_ci(saved), median_ci(pct),
                      [figures[settings_key(f)] for f in finalists])


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
