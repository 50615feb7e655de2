"""Choose per-stage settings for the fewest predicted joules, within a time bound.

Jolteon's chance-constrained optimisation (NSDI'24) with joules as the cost: stages
run one after another, so a pipeline's time is the sum of its stages' times and its
energy the sum of their energies. Each stage model is sampled (parameter posterior
and run noise, :meth:`~.stage_model.StageModel.sample`) at every candidate setting, stages
independently, and a plan is feasible when the share of joint draws whose total time
is within ``max_seconds`` is at least ``confidence`` — Jolteon's sample approximation
of ``P(T <= bound) >= 1 - risk``. Among feasible plans the one with the least median
total energy wins. Jolteon searches a continuous relaxation with SLSQP and then
probes neighbouring grid points; rayjoule's grids are small (tasks and CPUs per task
per stage), so it enumerates them exactly after dropping candidates that another
candidate beats draw by draw in both time and energy (which can never be optimal).

Candidates the fitted law cannot speak for are dropped first: where it gives no positive
time (its shape terms take over far from the profiles, and draws clipped at zero would
look like free energy), and combinations whose effective parallelism was never profiled
unless nothing else is left (then the plan's warnings say it extrapolates).

A stage that reads another through a shuffle (a model with the exchange term,
:attr:`~.stage_model.StageModel.fan_in_stages`) costs what it costs *given* the upstream stage's
task count: its candidates are (tasks, CPUs, fan-in) for every fan-in the upstream
candidates can produce, a plan is valid only where its fan-in equals the upstream's
chosen task count, and the two stages are chosen jointly. Dominance pruning then compares
a reader's candidates only at one fan-in, and never prunes an upstream stage's (a slower
upstream setting may make its readers cheaper).

Memory (MB per task) is a candidate setting of a stage whose profiles vary it: its
candidates are the profiled memory values (:data:`~.stage_model.StageModel.memory_values`), least
first, so where memory buys nothing the tie goes to the least (:mod:`.forms`: memory held
costs joules through the energy model's memory term, where the profiles support one).

Time-only models (e.g. from flexecutor timings) have no energy; with any of them the
plan minimises median time instead, and says so.

Times: the time bound and the search use each stage's wall time (exec + the cold start
drawn from its profiles); the plan reports ``exec_s``, ``cold_start_s`` and ``wall_s`` (their
sum) per stage and in total. **A flat landscape** is said so: :attr:`Plan.near_optimal`
lists the feasible plans whose median objective is within :data:`~.plans.NEAR_PCT` % of the
optimum's, since where several are, the data cannot pick one of them with confidence.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Mapping, Sequence

import numpy as np

from rayjoule.core.errors import ConfigError
from rayjoule.modelling import forms
from rayjoule.modelling.estimates import Estimate, Prediction
from rayjoule.modelling.plans import (
    Plan,
    candidate_settings,
    near_optimal,
)
from rayjoule.modelling.profiles import ModelError
from rayjoule.modelling.stage_model import N_SAMPLES, StageModel, read_size

#: candidate settings per stage at most (tasks × CPUs × memory values)
MAX_PER_STAGE = 1024
MAX_PLANS = 200_000
_CHUNK_VALUES = 4_000_000  # draws × plans evaluated at once
#: up to this many plans every candidate is enumerated (dominated ones too, so that the
#: near-optimal list is complete); beyond, dominated candidates are pruned first
UNPRUNED_PLANS = 20_000


def default_grid(model: StageModel) -> dict[str, list[float]]:
    """Powers of two of tasks and of CPUs per task within the profiled ranges (and their ends),
    and the profiled memory values where memory is a setting.

    CPUs per task take the powers of two between the ends too: profiles at 0.5, 1 and 2
    CPUs must offer 1 as well, not only the extremes.
    """
    lo, hi = model.profiled_range["tasks"]
    tasks = sorted({int(lo), int(hi)} | {2**i for i in range(32) if lo <= 2**i <= hi})
    c_lo, c_hi = model.profiled_range["num_cpus"]
    cpus = sorted({c_lo, c_hi} | {2.0**i for i in range(-8, 9) if c_lo <= 2.0**i <= c_hi})
    out: dict[str, list[float]] = {"tasks": tasks, "num_cpus": cpus}
    if model.memory_setting:
        out["memory_mb"] = list(model.memory_values)
    return out


def optimise(models: Mapping[str, StageModel], size: float,
             candidates: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
             max_seconds: float | None = None, confidence: float = 0.95,
             n_samples: int = N_SAMPLES, seed: int = 0,
             fixed_tasks: Mapping[str, int] | None = None,
             task_costs: Mapping[str, tuple[float, float]] | None = None,
             base_cost: tuple[float, float] = (0.0, 0.0)) -> Plan:
    """The least-energy plan whose total time is within ``max_seconds`` with ``confidence``.

    ``models`` are the pipeline's stages in order; ``candidates`` maps each stage to a
    grid ``{"tasks": [...], "num_cpus": [...], "memory_mb": [...]}`` (default:
    :func:`default_grid`; memory only where it is a setting, default the profiled values).
    ``fixed_tasks`` gives the task count of stages that are not modelled (run at one
    setting), for readers that shuffle from them. ``task_costs`` maps a stage to the seconds
    and joules per task of it that a fixed stage reading it pays (a merge that grows with
    its upstream's task count): the search counts them, the stage's prediction does not.
    ``base_cost`` (seconds, joules) is what every plan costs beyond its stages (the fixed
    stages' own part): the time bound is of whole plans, and so are the near-optimal list's
    figures and its "within 5 %". Raises ModelError naming the best achievable time when
    no plan meets the bound.
    """
    if not models:
        raise ConfigError("optimise needs at least one stage model")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    if max_seconds is not None and not max_seconds > 0:
        raise ConfigError(f"max_seconds must be > 0, got {max_seconds}")
    unknown = sorted(set(candidates or {}) - set(models))
    if unknown:
        raise ConfigError(f"candidates for unknown stage(s) {', '.join(unknown)}; the models "
                          f"are {', '.join(models)}")
    size = read_size(size)
    time_only = sorted(s for s, m in models.items() if m.time_only)
    objective = "time" if time_only else "energy"
    stages = list(models)
    base = {s: _grid(models[s], (candidates or {}).get(s) or default_grid(models[s]))
            for s in stages}
    links = _links(models, stages, fixed_tasks or {})
    upstream = {stages[j] for ups, _ in links.values() for j in ups}
    charged = task_costs or {}
    drawn, keeps = [], []
    for k, stage in enumerate(stages):
        model = models[stage]
        grid: list[tuple] = list(base[stage])
        if k in links:  # a shuffle reader: one candidate per (setting, possible fan-in)
            ups, fixed = links[k]
            fan_ins = sorted({fixed + sum(c) for c in itertools.product(
                *[sorted({g[0] for g in base[stages[j]]}) for j in ups])})
            grid = [(t, c, m, u) for u in fan_ins for t, c, m in grid]
        grid = _supported(model, grid, size)
        rng = np.random.default_rng([seed, zlib.crc32(stage.encode())])
        x, cold, e = model.sample_parts(
            [g[0] for g in grid], [g[1] for g in grid], size, n_samples, rng,
            fan_in=[g[3] for g in grid] if k in links else None,
            memory=[g[2] for g in grid] if model.memory_setting else None)
        t = x if cold is None else x + cold
        o = t if e is None else e
        if stage in charged:  # what the fixed readers pay for these tasks
            per_s, per_j = charged[stage]
            n_tasks = np.array([g[0] for g in grid], float)
            t = t + per_s * n_tasks
            o = t if e is None else o + per_j * n_tasks
        if stage in upstream:
            keep = list(range(len(grid)))
        else:  # dominance only among candidates at one fan-in
            keep = sorted(i for u in {g[3:] for g in grid}
                          for i in _undominated_among(t, o, [j for j, g in enumerate(grid)
                                                             if g[3:] == u]))
        drawn.append((grid, t, x, cold, e, o))
        keeps.append(keep)
    if np.prod([len(d[0]) for d in drawn]) <= UNPRUNED_PLANS:
        # small enough to enumerate whole: pruning changes no choice (a dominated candidate
        # never wins, ties go to the earlier), but the near-optimal list needs every plan
        keeps = [list(range(len(d[0]))) for d in drawn]
    grids = [[d[0][i] for i in keep] for d, keep in zip(drawn, keeps, strict=True)]
    t_draws = [d[1][:, keep] for d, keep in zip(drawn, keeps, strict=True)]
    x_draws = [d[2][:, keep] for d, keep in zip(drawn, keeps, strict=True)]
    c_draws = [d[3] for d in drawn]
    e_draws = [None if d[4] is None else d[4][:, keep] for d, keep in zip(drawn, keeps,
                                                                          strict=True)]
    o_draws = t_draws if time_only else [d[5][:, keep] for d, keep in zip(drawn, keeps,
                                                                          strict=True)]
    n_plans = int(np.prod([len(g) for g in grids]))
    if n_plans > MAX_PLANS:
        raise ConfigError(f"{n_plans} candidate plans remain after pruning; narrow the grids "
                          f"to at most {MAX_PLANS}")
    valid = _valid(grids, links)
    base_t = base_cost[0]
    bound = None if max_seconds is None else max_seconds - base_t
    best, fastest, n_plans, feasible = _search(t_draws, o_draws, bound, confidence,
                                               n_samples, valid)
    if best is None:
        plan_t, idx = fastest
        raise ModelError(
            f"no candidate plan finishes within {max_seconds:g} s with {confidence:.0%} "
            f"confidence; the best achievable at that confidence is {plan_t + base_t:.3g} s "
            f"({_describe(stages, grids, idx)})")
    total_t = sum(t[:, i] for t, i in zip(t_draws, best, strict=True))
    total_x = sum(x[:, i] for x, i in zip(x_draws, best, strict=True))
    colds = [c[:, 0] for c in c_draws if c is not None]
    settings, predictions = {}, {}
    for k, (stage, i) in enumerate(zip(stages, best, strict=True)):
        model, e, cold = models[stage], e_draws[k], c_draws[k]
        settings[stage] = candidate_settings(model, grids[k][i])
        shown = dict(settings[stage])
        if k in links:
            shown["fan_in"] = grids[k][i][3]
        predictions[stage] = Prediction(
            stage, shown, float(size), Estimate.of(x_draws[k][:, i]),
            None if cold is None else Estimate.of(cold[:, 0]),
            None if e is None else Estimate.of(e[:, i]), dict(model.held_out_error),
            model.warnings_at(shown, size))
    warnings = [w for p in predictions.values() for w in p.warnings]
    if time_only:
        warnings.insert(0, f"stage(s) {', '.join(time_only)} have time-only models (no "
                           "energy profiled): the plan minimises time, not joules")
    offset = base_cost[0] if time_only else base_cost[1]
    near = near_optimal((feasible[0], feasible[1] + offset), stages, models, grids, objective)
    return Plan(
        objective=objective, settings=settings, size=size,
        exec_s=Estimate.of(total_x),
        cold_start_s=Estimate.of(sum(colds)) if colds else None,
        total_j=None if time_only else Estimate.of(
            sum(e[:, i] for e, i in zip(e_draws, best, strict=True))),
        max_seconds=max_seconds, confidence=confidence,
        p_within_bound=None if bound is None else float(np.mean(total_t <= bound)),
        stages=predictions, warnings=warnings, plans_considered=n_plans, near_optimal=near,
    )


def _links(models: Mapping[str, StageModel], stages: list[str],
           fixed_tasks: Mapping[str, int]) -> dict[int, tuple[list[int], int]]:
    """Shuffle readers: stage index → (indices of the modelled stages it reads, and the
    summed task count of the fixed ones it reads)."""
    links = {}
    for k, stage in enumerate(stages):
        model = models[stage]
        if not model.exchange:
            continue
        unknown = [u for u in model.fan_in_stages if u not in models and u not in fixed_tasks]
        if unknown:
            raise ConfigError(f"stage {stage!r} reads {', '.join(unknown)} through a shuffle, "
                              "but no model or fixed task count of it was given")
        links[k] = ([stages.index(u) for u in model.fan_in_stages if u in models],
                    sum(int(fixed_tasks[u]) for u in model.fan_in_stages if u not in models))
    return links


def _valid(grids: list[list[tuple]], links: dict[int, tuple[list[int], int]]):
    """A predicate on plans (one candidate index per stage): every reader's fan-in equals
    the task count its upstream candidates give (None: every plan is valid)."""
    if not links:
        return None

    def ok(plan: tuple[int, ...]) -> bool:
        return all(grids[k][plan[k]][3] == fixed + sum(grids[j][plan[j]][0] for j in ups)
                   for k, (ups, fixed) in links.items())
    return ok


def _grid(model: StageModel, spec: Mapping[str, Sequence[float]]) -> list[tuple]:
    """(tasks, CPUs, memory or None) candidates, in tie-breaking order."""
    stage = model.stage
    tasks, cpus = spec.get("tasks"), spec.get("num_cpus", [1.0])
    if not tasks or not cpus:
        raise ConfigError(f"stage {stage!r}: candidates need non-empty 'tasks' and 'num_cpus'")
    memory: Sequence[float | None] = [None]
    if model.memory_setting:
        memory = spec.get("memory_mb") or list(model.memory_values)
    bad = [t for t in tasks if isinstance(t, bool) or not isinstance(t, int) or t < 1]
    bad += [c for c in cpus if isinstance(c, bool) or not isinstance(c, int | float) or c <= 0]
    bad += [m for m in memory if m is not None and (
        isinstance(m, bool) or not isinstance(m, int | float) or m <= 0)]
    if bad:
        raise ConfigError(f"stage {stage!r}: bad candidate value(s) {bad}; tasks are integers "
                          ">= 1, num_cpus and memory_mb numbers > 0")
    # CPUs nearest one per task first: where the model cannot tell CPU counts apart (the
    # ``tasks`` form), ties go to the earlier candidate, and one CPU per task is the neutral
    # choice (fewer oversubscribe the cores, more leave them idle); the least memory first,
    # so memory that buys nothing is not held
    by_one = sorted(set(cpus), key=lambda c: (abs(math.log2(c)), c))
    mems = [None] if memory == [None] else [float(m) for m in sorted(set(memory))]
    grid = [(int(t), float(c), m)
            for t, c, m in itertools.product(sorted(set(tasks)), by_one, mems)]
    if len(grid) > MAX_PER_STAGE:
        raise ConfigError(f"stage {stage!r}: {len(grid)} candidate settings; at most "
                          f"{MAX_PER_STAGE} per stage")
    return grid


def _supported(model: StageModel, grid: list[tuple], size: float) -> list[tuple]:
    """The candidates the fitted law can speak for.

    Where the fitted time law gives no positive time it does not hold (its shape terms
    take over far outside the profiles), and its draws, clipped at zero, would look like
    free energy: such candidates are dropped, always. Combinations of tasks and CPUs whose
    effective parallelism was never profiled (8 tasks × 0.5 CPUs when x = tasks/CPUs and
    x ≤ 8 was profiled) are dropped too — unless nothing else is left, in which case they
    stay and the plan's warnings say it extrapolates.
    """
    tasks = np.array([g[0] for g in grid], float)
    cpus = np.array([g[1] for g in grid], float)
    fan_in = np.array([g[3] for g in grid], float) if model.exchange else None
    memory = np.array([g[2] for g in grid], float) if model.memory_setting else None
    positive = model.time_fit.predict(forms.time_features(model.time_form, tasks, cpus,
                                                          size, fan_in, memory,
                                                          model.slots)) > 0
    if not positive.any():
        raise ModelError(f"stage {model.stage!r}: the fitted time law gives no positive time "
                         f"at any candidate setting at size {size:g}; profile nearer to it")
    keep = positive
    if model.parallelism_range is not None:
        lo, hi = model.parallelism_range
        x = forms.parallelism(model.time_form, tasks, cpus, memory)
        inside = positive & (x >= lo * (1 - 1e-9)) & (x <= hi * (1 + 1e-9))
        keep = inside if inside.any() else positive
    return [g for g, k in zip(grid, keep, strict=True) if k]


def _undominated_among(t: np.ndarray, o: np.ndarray, cols: list[int]) -> list[int]:
    """:func:`_undominated` within the columns ``cols`` (indices into t and o)."""
    return [cols[i] for i in _undominated(t[:, cols], o[:, cols])]


def _undominated(t: np.ndarray, o: np.ndarray) -> list[int]:
    """Candidates that no other candidate beats (or ties earlier) in every draw."""
    keep = []
    for a in range(t.shape[1]):
        no_worse = (t <= t[:, [a]]).all(axis=0) & (o <= o[:, [a]]).all(axis=0)
        strictly = (t < t[:, [a]]).any(axis=0) | (o < o[:, [a]]).any(axis=0)
        beaten = no_worse & (strictly | (np.arange(t.shape[1]) < a))
        beaten[a] = False
        if not beaten.any():
            keep.append(a)
    return keep


def _search(t_draws: list[np.ndarray], o_draws: list[np.ndarray], bound: float | None,
            confidence: float, n: int, valid=None
            ) -> tuple[tuple[int, ...] | None, tuple[float, tuple], int,
                       tuple[np.ndarray, np.ndarray]]:
    """Enumerate every (valid) plan: the best feasible one, the fastest at ``confidence``,
    how many plans there were, and the feasible plans (indices, median objective)."""
    sizes = [t.shape[1] for t in t_draws]
    chunk = max(1, _CHUNK_VALUES // n)
    best, best_key = None, (np.inf, np.inf)
    fastest = (np.inf, ())
    plans = itertools.product(*[range(k) for k in sizes])
    if valid is not None:
        plans = filter(valid, plans)
    count = 0
    kept_plans, kept_medians = [], []
    while batch := list(itertools.islice(plans, chunk)):
        count += len(batch)
        idx = np.array(batch)
        total_t = sum(t[:, idx[:, k]] for k, t in enumerate(t_draws))
        med_o = np.median(sum(o[:, idx[:, k]] for k, o in enumerate(o_draws)), axis=0)
        q_t = np.quantile(total_t, confidence, axis=0)
        j = int(np.argmin(q_t))
        if q_t[j] < fastest[0]:
            fastest = (float(q_t[j]), tuple(batch[j]))
        ok = np.ones(len(batch), bool) if bound is None else np.mean(total_t <= bound, 0) >= \
            confidence
        if ok.any():
            med_t = np.median(total_t, axis=0)
            cand = np.flatnonzero(ok)
            kept_plans.append(idx[cand])
            kept_medians.append(med_o[cand])
            j = cand[np.lexsort((med_t[cand], med_o[cand]))[0]]
            if (med_o[j], med_t[j]) < best_key:
                best, best_key = tuple(batch[j]), (med_o[j], med_t[j])
    width = len(sizes)
    feasible = (np.concatenate(kept_plans) if kept_plans else np.zeros((0, width), int),
                np.concatenate(kept_medians) if kept_medians else np.zeros(0))
    return best, fastest, count, feasible


def _describe(stages: list[str], grids: list[list[tuple]], idx: tuple) -> str:
    return ", ".join(f"{s}: tasks={grids[k][i][0]} num_cpus={grids[k][i][1]:g}"
                     for k, (s, i) in enumerate(zip(stages, idx, strict=True)))
