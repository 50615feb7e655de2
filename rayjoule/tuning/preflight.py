"""What a tune checks and sizes before its first trial: stage caps, CPUs, the storage.

Why apart from the search space (:mod:`.space`): these need the pipeline, the cluster or
the Optuna storage, and every one of them must fail as bad input (one line, exit 2)
before any trial spends a joule.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from typing import Any

from rayjoule.core.errors import ConfigError
from rayjoule.runs.session import resolve_pipeline
from rayjoule.tuning.space import Range, SearchSpace


def cap_to_stages(ranges: Mapping[str, Range], pipeline: Any) -> dict[str, Range]:
    """A stage that must run as at most N tasks (an aggregate) is searched within 1..N.

    >>> from workloads import get_pipeline
    >>> cap_to_stages({"map": Range(1, 64), "top": Range(1, 64)}, get_pipeline("wordcount"))
    {'map': Range(low=1, high=64), 'top': Range(low=1, high=1)}
    """
    capped = {}
    for stage, r in ranges.items():
        cap = pipeline.stage(stage).max_tasks
        if cap is not None and r.high > cap:
            r = dataclasses.replace(r, low=min(r.low, cap), high=cap)
        capped[stage] = r
    return capped


def check_num_cpus(num_cpus: Mapping[str, Range], cluster_cpus: int,
                   frameworks: tuple[str, ...]) -> None:
    """A --num-cpus range beyond the cluster is bad input, found before any trial runs."""
    if "ray" not in frameworks:
        return
    for stage, r in num_cpus.items():
        if r.low > cluster_cpus:
            raise ConfigError(f"--num-cpus {r.low:g} for stage {stage!r} exceeds the "
                              f"cluster's {cluster_cpus} CPUs")


def check_meter(meter: str) -> None:
    """``auto`` or a meter's name, checked before anything starts (an unknown name was found
    by the first trial's measured block, after the study was created)."""
    import meters

    known = sorted(meters.meter_classes())
    if meter != "auto" and meter not in known:
        raise ConfigError(f"unknown meter {meter!r}; give auto or one of {', '.join(known)}")


def cluster_cpus(frameworks: tuple[str, ...], address: str | None,
                 keep_alive: bool = False) -> tuple[int, bool]:
    """CPUs to size the concurrency range, and whether Ray was started here (to stop it).

    Connects to Ray first when Ray is searched; otherwise this machine's CPUs.
    """
    if "ray" not in frameworks:
        return os.cpu_count() or 1, False
    import ray

    from rayjoule.cluster.connect import connect

    started = connect(address, keep_alive=keep_alive)
    return int(ray.cluster_resources().get("CPU", 1)), started


def check_runs(base: Any, space: SearchSpace, trials: int, repeats: int) -> None:
    """Every trial the space allows must pass the run's own checks, found now rather than
    at the trial that draws it: each framework at the space's corners (most tasks at the
    highest concurrency: the task records and native's process cap; fewest tasks at the
    lowest: the longest run against ``--max-hours``), and the trials together, even at the
    quickest corner (at least :data:`~rayjoule.runs.session.RUN_FLOOR_S` a run), within
    ``--max-hours`` (``--trials 10**12`` would otherwise run for ever)."""
    from rayjoule.runs.session import check_feasible, check_runs_hours, estimated_run_s

    tasks = _ranges(space.tasks)
    cpus = _ranges(space.num_cpus)
    conc = space.concurrency
    quickest_s = math.inf
    for fw in space.frameworks:
        for pick, c in ((lambda r: r.high, conc.high), (lambda r: r.low, conc.low)):
            by_stage = {s: int(pick(r)) for s, r in tasks.items()}
            config = dataclasses.replace(
                base, framework=fw, tasks=_one_or_map(by_stage), concurrency=int(c),
                num_cpus=_one_or_map({s: float(r.low) for s, r in cpus.items()}),
                mode=space.modes[0] if fw == "ray" else "tasks", repeats=repeats).validated()
            check_feasible(config, config.stage_settings(resolve_pipeline(config))[0])
        by_stage = {s: int(r.high) for s, r in tasks.items()}
        quickest_s = min(quickest_s, estimated_run_s(
            dataclasses.replace(base, concurrency=int(conc.high)), by_stage))
    check_runs_hours(trials * repeats * quickest_s, base.max_hours,
                     f"{trials} trial(s) × {repeats} repeat(s)",
                     "even at the space's quickest setting; use fewer --trials/--repeats")


def _ranges(ranges: Range | Mapping[str, Range]) -> dict[str, Range]:
    return {"": ranges} if isinstance(ranges, Range) else dict(ranges)


def _one_or_map(values: dict[str, Any]) -> Any:
    """One value for a single stage (or the space's unnamed one), stage → value otherwise."""
    return next(iter(values.values())) if len(values) == 1 else values
