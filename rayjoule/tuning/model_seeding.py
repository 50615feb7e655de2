"""``python -m rayjoule.tune --sampler model``: profile, predict, then let TPE search the rest.

Why: a live tune pays joules for every trial, and its first trials are blind (TPE starts
with random ones). The models of :mod:`rayjoule.modelling` turn a few cheap profiling
runs (at fractions of the tuned size) into a prediction, so the study starts where the
model expects the fewest joules:

1. profiles of the workload in the store (same framework and parameters) are fitted; if
   there are too few, the profiling design of :mod:`rayjoule.modelling.profiling_design` is
   run first, its grid at ⅛ of the tuner's size and its two anchors at ½ (stored, tagged,
   and shown by the command before and after);
2. the optimiser picks per-stage settings within the tuner's search space (and the
   profiled range) under ``--max-seconds``; the optimum and its rivals (the settings
   likeliest to be within 5 % of the best, and the optimum at other concurrencies — which
   the model does not describe) are enqueued as the first trials, each at the concurrency
   its profiles assume (the CPU budget packed with tasks of its size);
3. every few completed trials the models are refitted with those trials' measurements
   added, and a new predicted optimum is enqueued when it differs from what was tried.

Everything else is TPE (the tuner's sampler for ``model``). Settings outside the model's
reach — other frameworks, Ray's actor mode, concurrency — are left to TPE.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape

from rayjoule.core.errors import ConfigError
from rayjoule.modelling import (
    ChosenProfiles,
    ModelError,
    PipelineModel,
    PipelinePlan,
    Profile,
    ProfileDesign,
    ProfilingOutcome,
    choose_profiles,
    design,
    fit_pipeline,
    paired_concurrency,
    run_design,
)
from rayjoule.modelling.profiling_runs import check_design_feasible
from rayjoule.runs.store import Store
from rayjoule.tuning.space import Range

log = logging.getLogger(__name__)

#: rivals of the optimum enqueued from the first fit (likeliest near-optimal first)
N_RIVALS = 2
#: "near-optimal": within this factor of the best candidate's joules, draw by draw
NEAR = 1.05
#: completed trials between refits
REFIT_EVERY = 3
CPU_POINTS = (0.25, 0.5, 1.0, 2.0)


def seed_with_model(tuner: Any, store: Store, pipeline: Any, console: Console,
                    before_profiling: Callable[[ProfileDesign], None] | None = None,
                    after_profiling: Callable[[ProfilingOutcome], None] | None = None
                    ) -> ModelSeeder:
    """Fit (profiling first if needed), enqueue the model's best trials, refit as trials come.

    ``before_profiling`` / ``after_profiling`` let the command show the design before it
    runs and what it spent after (rendering is the command's).
    """
    base = tuner.s.base
    try:
        chosen = choose_profiles(store, base.workload, base.framework, base.params)
        fitted = fit_pipeline(chosen.profiles)
    except ModelError as exc:
        console.print(f"model: {escape(str(exc))}; profiling first")
        d = design(base)
        if before_profiling:
            before_profiling(d)
        outcome = run_design(d, base, store)
        if after_profiling:
            after_profiling(outcome)
        chosen = choose_profiles(store, base.workload, base.framework, base.params)
        fitted = fit_pipeline(chosen.profiles)
    seeder = ModelSeeder(tuner, pipeline, fitted, chosen, console, store)
    seeder.enqueue(seeder.initial_seeds(), "first fit")
    tuner.add_callback(seeder.on_trial)
    return seeder


def check_profiling(db: str | Path, base: Any) -> None:
    """Before anything starts: if the store's profiles cannot be fitted (none, too few, of
    another workload), the profiling design :func:`seed_with_model` would run must pass
    :func:`~rayjoule.modelling.check_design_feasible`, as ``python -m rayjoule.profile``'s
    does — otherwise a design that cannot finish (its runs together past ``--max-hours``)
    stored its first runs and then failed."""
    if Path(db).expanduser().exists() or str(db) == ":memory:":
        with Store(db) as store:
            try:
                fit_pipeline(choose_profiles(store, base.workload, base.framework,
                                             base.params).profiles)
                return
            except ModelError:
                pass
    try:
        check_design_feasible(design(base), base)
    except ConfigError as exc:
        raise ConfigError(f"--sampler model profiles {base.workload} first (the store has no "
                          f"profiles to fit), but {exc}") from None


class ModelSeeder:
    """Turns the fitted models into enqueued Optuna trials, and refits as trials complete."""

    def __init__(self, tuner: Any, pipeline: Any, fitted: PipelineModel, chosen: ChosenProfiles,
                 console: Console, store: Store | None) -> None:
        self.tuner, self.console, self.store = tuner, console, store
        self.base, self.space = tuner.s.base, tuner.s.space
        self.stages = [s.name for s in pipeline.order()]
        self.fitted, self.profiles, self.meter = fitted, list(chosen.profiles), chosen.meter
        self.size = float(self.base.size)
        self.concurrency = int(self.base.concurrency)
        self.learned: list[Profile] = []
        self.seen: set[int] = set()
        self.since_refit = 0
        self.default_tasks, self.default_cpus = self.base.stage_settings(pipeline)
        self.candidates = {s: self._candidates(s) for s in fitted.models}

    # -- the search space, per stage ----------------------------------------------------------
    def _range(self, ranges: Range | Mapping[str, Range], stage: str) -> Range | None:
        if isinstance(ranges, Range):
            return ranges
        if len(ranges) == 1:
            return next(iter(ranges.values()))
        return ranges.get(stage)

    def _candidates(self, stage: str) -> dict[str, list]:
        """Tasks (powers of two) and CPUs within the tuner's bounds and the profiled range."""
        model = self.fitted.models[stage]
        lo, hi = model.profiled_range["tasks"]
        r = self._range(self.space.tasks, stage)
        if r is None:
            tasks = [self.default_tasks[stage]]
        else:
            a, b = max(r.low, lo), min(r.high, hi)
            if a > b:  # no overlap: the nearest end of the space, extrapolating
                a = b = r.low if r.low > hi else r.high
            tasks = sorted({int(a), int(b)} | {2**i for i in range(32) if a <= 2**i <= b})
        cpus = [float(self.default_cpus[stage])]
        r = self._range(self.space.num_cpus, stage)
        if self.base.framework == "ray" and r is not None:
            c_lo, c_hi = model.profiled_range["num_cpus"]
            inside = sorted({c for c in (*CPU_POINTS, c_lo, c_hi)
                             if r.low <= c <= r.high and c_lo <= c <= c_hi})
            cpus = inside or [min(max(1.0, r.low), r.high)]
        return {"tasks": tasks, "num_cpus": cpus}

    # -- predictions -> Optuna params ------------------------------------------------------------
    def best(self) -> PipelinePlan:
        """The optimiser's plan within the candidates (unbounded if the bound cannot hold)."""
        try:
            return self.fitted.plan(self.size, candidates=self.candidates,
                                    max_seconds=self.tuner.s.max_seconds)
        except ModelError as exc:
            self.console.print(f"model: {escape(str(exc))}; seeding without the time bound")
            return self.fitted.plan(self.size, candidates=self.candidates)

    def ranked(self, stage: str, n_samples: int = 1000,
               others: dict[str, tuple[int, float]] | None = None) -> list[tuple[int, float]]:
        """A stage's candidate settings, the likeliest to be near-optimal first.

        The model is sampled at every candidate with shared draws (as the optimiser does);
        a candidate's score is the share of draws in which its joules (time, if time-only)
        are within :data:`NEAR` of that draw's best candidate — the posterior probability
        that it is a good choice, which weighs the model's uncertainty instead of its
        median alone. Ties go to the lower median; combinations whose effective
        parallelism was never profiled go last. A stage that reads others through a shuffle
        is ranked at their task counts in ``others`` (stage → (tasks, CPUs): the optimum).
        """
        model = self.fitted.models[stage]
        grid = [(int(t), float(c)) for t in self.candidates[stage]["tasks"]
                for c in self.candidates[stage]["num_cpus"]]
        fan_in = None
        if model.exchange:
            fan_in = sum(int((others or {})[u][0]) for u in model.fan_in_stages)
        t, e = model.sample([g[0] for g in grid], [g[1] for g in grid], self.size, n_samples,
                            np.random.default_rng(0), fan_in=fan_in)
        # what a fixed merge reading this stage pays per task of it, as the optimiser counts it
        per_s, per_j = self.fitted.task_costs().get(stage, (0.0, 0.0))
        n_tasks = np.array([g[0] for g in grid], float)
        t = t + per_s * n_tasks
        o = t if e is None else e + per_j * n_tasks
        near = np.mean(o <= NEAR * o.min(axis=1, keepdims=True), axis=0)
        median = np.median(o, axis=0)
        unseen = [any("effective parallelism" in w for w in model.extrapolates(
            {"tasks": g[0], "num_cpus": g[1], "fan_in": fan_in}, self.size)) for g in grid]
        order = sorted(range(len(grid)), key=lambda i: (unseen[i], -near[i], median[i]))
        return [grid[i] for i in order]

    def initial_seeds(self) -> list[dict[str, Any]]:
        """The optimum; its likeliest near-optimal rivals (one stage changed at a time); and
        the optimum at other concurrencies, which the model does not describe (the next one
        up, and the top of the range: on Ray a concurrency at or above what the cluster can
        hold lifts the placement-group cap). Each model seed runs at the concurrency that
        packs the profiled CPU budget with its tasks (:meth:`concurrency_for`), the
        condition its profiles were measured under."""
        plan = self.best()
        self.console.print(_describe(plan, "predicted optimum", self.meter))
        optimum = _optimum(plan)
        seeds = [self._seed(optimum)]
        rivals = []
        for stage in self.fitted.models:
            for rank, setting in enumerate(self.ranked(stage, others=optimum)):
                if setting != optimum[stage]:
                    rivals.append((rank, {**optimum, stage: setting}))
        for _, settings in sorted(rivals, key=lambda r: r[0])[:N_RIVALS]:
            seeds.append(self._seed(settings))
        for other in self._other_concurrencies(seeds[0]["concurrency"]):
            seeds.append({"settings": optimum, "concurrency": other})
        return seeds

    def concurrency_for(self, settings: Mapping[str, tuple[int, float]]) -> int:
        """The concurrency the model's profiles assume for these settings: on Ray, the
        profiled CPU budget (the base concurrency) packed with tasks of their CPU size
        (:func:`~rayjoule.modelling.paired_concurrency`), within the search space;
        elsewhere the base concurrency."""
        if self.base.framework != "ray":
            return self.concurrency
        return min(paired_concurrency(self.concurrency, settings), int(self.space.concurrency.high))

    def _seed(self, settings: Mapping[str, tuple[int, float]]) -> dict[str, Any]:
        return {"settings": dict(settings), "concurrency": self.concurrency_for(settings)}

    def _other_concurrencies(self, used: int) -> list[int]:
        r = self.space.concurrency
        if r.fixed:
            return []
        up = used + 1
        if up > r.high:
            return [used - 1] if used - 1 >= r.low else []
        return sorted({up, int(r.high)})

    def params(self, seed: Mapping[str, Any]) -> dict[str, Any]:
        """Optuna params of a seed (the names SearchSpace.suggest uses), clamped to bounds."""
        sp, settings = self.space, seed["settings"]
        out: dict[str, Any] = {}
        if len(sp.frameworks) > 1:
            out["framework"] = self.base.framework
        for dim, ranges, cast in (("tasks", sp.tasks, int), ("num_cpus", sp.num_cpus, float)):
            if dim == "num_cpus" and self.base.framework != "ray":
                continue
            per_stage = not isinstance(ranges, Range) and len(ranges) > 1
            for stage in self.stages:
                r = self._range(ranges, stage)
                if r is None or r.fixed or (not per_stage and stage != self.stages[0]):
                    continue
                value = settings.get(stage, (self.default_tasks[stage],
                                             self.default_cpus[stage]))[dim == "num_cpus"]
                name = f"{dim}.{stage}" if per_stage else dim
                out[name] = cast(min(max(value, r.low), r.high))
        if not sp.concurrency.fixed:
            out["concurrency"] = int(min(max(seed["concurrency"], sp.concurrency.low),
                                         sp.concurrency.high))
        if self.base.framework == "ray" and len(sp.modes) > 1:
            out["mode"] = self.base.mode if self.base.mode in sp.modes else sp.modes[0]
        return out

    def enqueue(self, seeds: list[dict[str, Any]], why: str) -> list[dict[str, Any]]:
        """Enqueue the seeds not tried or queued yet; the params enqueued."""
        done = []
        for seed in seeds:
            params = self.params(seed)
            if params in done or self._tried(params):
                continue
            self.tuner.study.enqueue_trial(params, user_attrs={"seeded_by": f"model ({why})"},
                                           skip_if_exists=True)
            done.append(params)
        if done:
            self.console.print(f"model ({why}): enqueued {len(done)} trial(s): "
                               + escape("; ".join(json.dumps(p) for p in done)))
        return done

    def _tried(self, params: Mapping[str, Any]) -> bool:
        for t in self.tuner.study.get_trials(deepcopy=False):
            have = {**t.system_attrs.get("fixed_params", {}), **t.params}
            if all(_same(have.get(k), v) for k, v in params.items()):
                return True
        return False

    # -- refitting ----------------------------------------------------------------------------
    def on_trial(self, study: Any, ft: Any) -> None:
        """Optuna callback: learn from a completed trial; refit every REFIT_EVERY of them."""
        if ft.state.name != "COMPLETE" or ft.number in self.seen:
            return
        self.seen.add(ft.number)
        self.learned.extend(self._profiles_of(ft))
        self.since_refit += 1
        if self.since_refit < REFIT_EVERY:
            return
        self.since_refit = 0
        try:
            self.fitted = fit_pipeline(self.profiles + self.learned)
        except ConfigError as exc:  # ModelError included: keep the previous models
            log.warning("model refit after trial %d failed, keeping the previous fit: %s",
                        ft.number, exc)
            return
        log.info("model refitted after trial %d with %d trial profiles", ft.number,
                 len(self.learned))
        optimum = _optimum(self.best())
        self.enqueue([self._seed(optimum)], f"refit with {len(self.learned)} trial profiles")

    def _profiles_of(self, ft: Any) -> list[Profile]:
        """A trial's measurements as profiles, when it ran where the model applies: same
        framework and mode, at the concurrency its settings pair with (:meth:`concurrency_for`)."""
        config = ft.user_attrs.get("config", {})
        if config.get("framework", self.base.framework) != self.base.framework or \
                config.get("mode", self.base.mode) != self.base.mode:
            return []
        result = self.store.get(ft.user_attrs.get("run_id", ""))
        if result is None:
            return []
        settings = {st.name: (st.tasks, st.num_cpus) for st in result.stages
                    if st.name in self.fitted.models}
        concurrency = config.get("concurrency", self.concurrency)
        if not settings or concurrency != self.concurrency_for(settings):
            return []
        out = []
        for r in result.repeats or [result]:
            tasks_of = {st.name: st.tasks for st in r.stages}
            for st in r.stages:
                if st.name in self.fitted.models and st.wall_s > 0 and st.energy.total_j > 0:
                    # a shuffle reader's profile carries its upstream's task count (fan-in)
                    ups = self.fitted.models[st.name].fan_in_stages
                    out.append(Profile(self.base.workload, st.name, st.tasks, st.num_cpus,
                                       None, self.size, st.wall_s, st.energy.total_j,
                                       st.energy.static_j, st.energy.dynamic_j, source="tune",
                                       run_id=r.run_id, energy_kind=r.meter.kind,
                                       concurrency=int(concurrency),
                                       fan_in=sum(tasks_of[u] for u in ups) if ups else None,
                                       fan_in_stages=ups))
        return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    return a == b


def _optimum(plan: PipelinePlan) -> dict[str, tuple[int, float]]:
    return {s: (v["tasks"], v["num_cpus"]) for s, v in plan.settings.items()}


def _describe(plan: PipelinePlan, what: str, meter: dict[str, str] | None) -> str:
    settings = ", ".join(f"{s}: tasks={v['tasks']} num_cpus={v['num_cpus']:g}"
                         for s, v in plan.settings.items())
    e, t = plan.total_j, plan.wall_s
    source = f"[predicted from profiles metered by {meter['name']}, {meter['kind']}]" \
        if meter else ""
    energy = f"{e.median:.3g} J [{e.low:.3g}, {e.high:.3g}] {source}" if e else "time-only"
    return escape(f"model: {what} {settings} → {energy}, {t.median:.3g} s "
                  f"[{t.low:.3g}, {t.high:.3g}]")
