"""Native vs Ray vs Lithops on the same chunks: how many joules the framework itself costs.

Repeats are interleaved (A B C A B C …) so drift and heat hit every framework
alike, after each framework's idle baseline. Every framework must produce the
same workload summary, or the comparison is meaningless and fails loudly.
Overhead energy = framework − native at the same tasks and concurrency,
paired by repeat, with a bootstrap 95 % interval.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

from rayjoule.core.config import RunConfig
from rayjoule.core.errors import ConfigError, RunFailed
from rayjoule.core.result import RunResult
from rayjoule.core.stats import median_ci
from rayjoule.runs.session import (
    Session,
    check_feasible,
    check_runs_hours,
    estimated_run_s,
    new_run_id,
    resolve_pipeline,
)
from rayjoule.runs.store import Store

BASELINE = "native"


def compare(
    base: RunConfig,
    frameworks: Sequence[str],
    repeats: int,
    store: Store,
    workload: Any | None = None,
    on_run: Callable[[RunResult], None] | None = None,
) -> dict[str, Any]:
    """Run every framework ``repeats`` times, interleaved; return the DESIGN.md compare dict.

    ``frameworks`` are specs for :func:`config_for` (``ray:actors`` compares Ray's
    actor pool as a framework of its own).
    """
    configs = check_comparison(base, frameworks, repeats, workload)
    results: dict[str, list[RunResult]] = {fw: [] for fw in frameworks}
    with ExitStack() as stack:
        batch = f"compare-{new_run_id()}"  # identifies the batch's runs in the store
        sessions = {fw: stack.enter_context(Session(cfg, store, workload, study=batch))
                    for fw, cfg in configs.items()}
        for _ in range(repeats):
            for fw, session in sessions.items():
                result = session.run_once()
                results[fw].append(result)
                if on_run:
                    on_run(result)
    return summarise(base, results)


def check_comparison(base: RunConfig, frameworks: Sequence[str], repeats: int,
                     workload: Any | None = None) -> dict[str, RunConfig]:
    """Every framework's config, checked before any work and before the store is opened.

    Refused here: no frameworks or one named twice (``ray`` and ``ray:tasks`` are the same
    runs), repeats below 1, a config any framework refuses, a run the run's own check
    would refuse, and a comparison whose runs together are estimated to take longer than
    ``max_hours`` (``--repeats 10**9`` ran for ever, a run at a time, before).
    """
    if repeats < 1:
        raise ConfigError(f"--repeats must be >= 1, got {repeats}")
    if not frameworks:
        raise ConfigError("--frameworks names no framework; give e.g. native,ray,lithops")
    configs = {spec: config_for(base, spec) for spec in frameworks}
    same = {(c.framework, c.mode) for c in configs.values()}
    if len(same) != len(frameworks):
        raise ConfigError(f"--frameworks must name distinct frameworks (ray and ray:tasks are "
                          f"the same), got {','.join(frameworks)}")
    pipeline = resolve_pipeline(base, workload)
    per_repeat_s = 0.0
    for config in configs.values():
        tasks_by_stage, _ = config.stage_settings(pipeline)
        check_feasible(config, tasks_by_stage)
        per_repeat_s += estimated_run_s(config, tasks_by_stage)
    check_runs_hours(repeats * per_repeat_s, base.max_hours,
                     f"{repeats} repeats of {len(configs)} framework(s)",
                     "use fewer --repeats or a smaller --size")
    return configs


def config_for(base: RunConfig, spec: str) -> RunConfig:
    """``native``, ``ray``, ``ray:actors``, ``ray:tasks`` or ``lithops`` → that run's config.

    Ray's mode comes from the spec, else from ``base.mode``; the other
    frameworks run chunks as plain calls.
    """
    framework, _, mode = spec.partition(":")
    if mode and framework != "ray":
        raise ConfigError(f"only ray takes a mode (ray:tasks, ray:actors), got {spec!r}")
    return dataclasses.replace(
        base, framework=framework, repeats=1,
        mode=(mode or base.mode) if framework == "ray" else "tasks",
        address=base.address if framework == "ray" else None,
        lithops_config=base.lithops_config if framework == "lithops" else None,
    ).validated()


def summarise(base: RunConfig, results: dict[str, list[RunResult]]) -> dict[str, Any]:
    """Medians, intervals and overheads from the interleaved results (checks summaries first).

    Start-up and steady state are reported apart, for every framework alike: the first
    repeat of each session is its cold start (pools, workers, actors, runtimes start inside
    its meter window); the rest are steady state. ``startup`` is the cold repeat minus the
    steady median. Overheads vs native are paired by repeat over the steady repeats, so
    they measure per-call cost, not start-up. With one repeat there is no steady state and
    every figure is the cold run's.
    """
    check_identical_summaries(results)
    first_runs = next(iter(results.values()))
    first = first_runs[0]
    n_repeats = len(first_runs)
    n_tasks = len(first.tasks) or 1
    out: dict[str, Any] = {
        "workload": base.workload,
        "size": first.config.get("size"),
        "tasks": base.tasks,
        "task_count": n_tasks,
        "concurrency": base.concurrency,
        "repeats": n_repeats,
        "steady_repeats": max(n_repeats - 1, 1),
        "summaries_compared": sum(len(r) for r in results.values()),
        "summary": first.summary,
        "meter": _meter_of(results),
        "frameworks": {},
    }
    native = results.get(BASELINE)
    for fw, runs in results.items():
        steady = _steady(runs)
        entry: dict[str, Any] = {
            "wall_s": median_ci([r.wall_s for r in steady]),
            "total_j": median_ci([r.energy.total_j for r in steady]),
            "static_j": median_ci([r.energy.static_j for r in steady]),
            "dynamic_j": median_ci([r.energy.dynamic_j for r in steady]),
            "tasks_j": median_ci([r.energy.tasks_j for r in steady]),
            "attributed_overhead_j": median_ci([r.energy.overhead_j for r in steady]),
            "startup": _startup(runs, steady),
            "meter": runs[0].meter.to_dict(),
            "run_ids": [r.run_id for r in runs],
        }
        if fw != BASELINE and native:
            native_steady = _steady(native)
            diffs = [r.energy.total_j - n.energy.total_j
                     for r, n in zip(steady, native_steady, strict=True)]
            entry["overhead_j"] = median_ci(diffs)
            entry["overhead_j_per_task"] = median_ci([d / n_tasks for d in diffs])
            entry["overhead_fraction"] = median_ci(
                [d / n.energy.total_j for d, n in zip(diffs, native_steady, strict=True)
                 if n.energy.total_j > 0] or [0.0])
        out["frameworks"][fw] = entry
    return out


def _steady(runs: list[RunResult]) -> list[RunResult]:
    return runs[1:] if len(runs) > 1 else runs


def _startup(runs: list[RunResult], steady: list[RunResult]) -> dict[str, Any] | None:
    """The cold first run minus the steady median: what starting the framework cost."""
    if len(runs) < 2:
        return None
    cold = runs[0]
    out = {}
    for key, value in (("total_j", lambda r: r.energy.total_j), ("wall_s", lambda r: r.wall_s)):
        stat = median_ci([value(r) for r in steady])
        lo, hi = stat["ci95"]
        out[key] = {"median": value(cold) - stat["median"],
                    "ci95": [value(cold) - hi, value(cold) - lo]}
    return out


def check_identical_summaries(results: dict[str, list[RunResult]]) -> None:
    """Every run of every framework must give the same workload summary, bit for bit."""
    seen: dict[str, list[str]] = {}
    for fw, runs in results.items():
        for r in runs:
            seen.setdefault(json.dumps(r.summary, sort_keys=True), []).append(f"{fw}:{r.run_id}")
    if len(seen) > 1:
        detail = " | ".join(f"{s} from {', '.join(who[:3])}" for s, who in seen.items())
        raise RunFailed(f"frameworks disagree on the workload's summary, so their energy is not "
                        f"comparable: {detail}")


def _meter_of(results: dict[str, list[RunResult]]) -> dict[str, str]:
    labels = {(r.meter.name, r.meter.kind) for runs in results.values() for r in runs}
    names = sorted({n for n, _ in labels})
    kinds = {k for _, k in labels}
    return {"name": "+".join(names), "kind": "measured" if kinds == {"measured"} else "modelled"}
