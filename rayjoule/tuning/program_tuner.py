"""Tune a user's own Ray program for joules: its keyword arguments are the knobs.

Why a tuner of its own next to :mod:`.tuner`: a program is not a workload (no partition,
map, reduce), so a trial is one metered call ``fn(**settings)`` (:mod:`.program_calls`),
and the answer a user wants is *how many joules the best settings save against my
defaults*. Trial 0 is therefore the function's own defaults; at the end the defaults and the
few best settings (the *finalists*: trials of one setting pooled by their median) are re-run
side by side (:mod:`.program_rerun`): the best is the finalist cheapest in that re-run, and
the saving comes with an interval rather than one noisy trial's luck. Study naming,
storage, samplers and resuming follow the workload tuner (:func:`~.tuner.default_storage`,
:func:`~.tuner.make_sampler`, :func:`~.tuner.storage_lock`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import statistics
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rayjoule.core.config import DEFAULT_DB, TDP_SCOPES
from rayjoule.core.errors import ConfigError, RunFailed
from rayjoule.runs.store import Store
from rayjoule.tuning.preflight import check_meter
from rayjoule.tuning.program_calls import Call, ProgramCaller
from rayjoule.tuning.program_loading import Program, choose_driver, load_program, program_of
from rayjoule.tuning.program_report import (
    ProgramTuneReport,
    apply_rerun,
    build_report,
    trial_row,
)
from rayjoule.tuning.program_rerun import side_by_side
from rayjoule.tuning.program_space import ProgramSpace
from rayjoule.tuning.tuner import (
    SAMPLERS,
    check_seed,
    default_storage,
    make_sampler,
    optuna_errors_only,
    storage_lock,
)

log = logging.getLogger(__name__)


class TrialFailed(Exception):
    """A trial whose program raised (or whose measuring failed): an Optuna FAIL trial."""


@dataclass
class ProgramTune:
    """A prepared tune: everything checked, nothing run yet (see :func:`prepare`)."""

    program: Program
    space: ProgramSpace
    trials: int
    max_seconds: float | None
    repeats: int
    rerun: int
    finalists: int
    sampler: str
    seed: int | None
    db: str | Path
    study_name: str
    storage: str
    address: str | None
    meter: str
    driver: str
    idle_seconds: float
    tdp_scope: str


def prepare(fn: Callable[..., Any] | str, space: Mapping[str, Any] | str | Path, *,
            trials: int = 20, max_seconds: float | None = None, repeats: int = 1,
            rerun: int = 3, finalists: int = 2, sampler: str = "tpe",
            seed: int | None = None, db: str | Path = DEFAULT_DB,
            study_name: str | None = None, storage: str | None = None,
            address: str | None = None, meter: str = "auto", name: str | None = None,
            driver: str = "auto", idle_seconds: float = 2.0,
            tdp_scope: str = "host", max_hours: float = 1.0) -> ProgramTune:
    """Check every argument (ConfigError, nothing run or stored) and name the study."""
    program = load_program(fn) if isinstance(fn, str) else program_of(fn, name)
    if name:
        program = Program(program.fn, program.spec, name, program.folder)
    knobs = ProgramSpace.load(space, program.fn)
    for label, value, low in (("trials", trials, 1), ("repeats", repeats, 1),
                              ("rerun", rerun, 3), ("finalists", finalists, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"--{label} must be a whole number >= {low}, got {value!r}")
    if max_seconds is not None and not (isinstance(max_seconds, int | float)
                                        and 0 < max_seconds < math.inf):
        raise ConfigError(f"--max-seconds must be > 0 and finite, got {max_seconds!r}")
    if sampler not in SAMPLERS:
        raise ConfigError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    check_seed(seed)
    make_sampler(sampler, 0, knobs)  # --sampler gp needs PyTorch: found now
    if tdp_scope not in TDP_SCOPES:
        raise ConfigError(f"tdp_scope must be one of {', '.join(TDP_SCOPES)}")
    if not isinstance(idle_seconds, int | float) or not 0 <= idle_seconds < math.inf:
        raise ConfigError(f"--idle-seconds must be >= 0 and finite, got {idle_seconds!r}")
    check_meter(meter)
    check_calls(trials * repeats + rerun * (1 + finalists), max_hours)
    return ProgramTune(
        program=program, space=knobs, trials=trials, max_seconds=max_seconds,
        repeats=repeats, rerun=rerun, finalists=finalists, sampler=sampler, seed=seed, db=db,
        study_name=study_name or default_study_name(program, knobs, max_seconds, seed),
        storage=storage or default_storage(db), address=address, meter=meter,
        driver=choose_driver(driver, program.fn), idle_seconds=float(idle_seconds),
        tdp_scope=tdp_scope)


#: the least a metered call of a program costs the tune: the wait for Ray's task events
#: (one report interval + a grace, ~0.35 s on a tune's own Ray instance, see LOCAL_RAY_ENV)
CALL_FLOOR_S = 0.35


def check_calls(calls: int, max_hours: float) -> None:
    """The calls a tune asks for (trials × repeats, and the side-by-side re-run), even at
    :data:`CALL_FLOOR_S` each, must fit in ``max_hours``: ``--trials 10**12`` or
    ``--rerun 10**12`` would otherwise run until stopped. A program's own time is not
    known before it runs, so this only refuses counts no program could finish."""
    if isinstance(max_hours, bool) or not isinstance(max_hours, int | float) or \
            not 0 < max_hours < math.inf:
        raise ConfigError(f"--max-hours must be > 0 and finite, got {max_hours!r}")
    hours = calls * CALL_FLOOR_S / 3600
    if hours > max_hours:
        raise ConfigError(
            f"{calls} metered calls (trials × repeats + the re-run's rounds) take at least "
            f"≈ {hours:.3g} h ({CALL_FLOOR_S:g} s each besides the program); use fewer "
            f"--trials/--repeats/--rerun, or pass --max-hours {hours * 1.5:.2g} to run them")


def default_study_name(program: Program, space: ProgramSpace,
                       max_seconds: float | None, seed: int | None = None) -> str:
    """The program, its knobs and a digest of their ranges (and the time bound and sampler
    seed when given): the same command resumes the same study."""
    digest = hashlib.sha1(json.dumps([program.spec or program.name, space.to_dict()],
                                     sort_keys=True, default=str).encode()).hexdigest()[:8]
    name = f"program-{program.name}-{'+'.join(space.names)}-{digest}"
    return name + (f"-max{max_seconds:g}s" if max_seconds else "") + \
        (f"-seed{seed}" if seed is not None else "")


def tune_program(fn: Callable[..., Any] | str, space: Mapping[str, Any] | str | Path, *,
                 trials: int = 20, max_seconds: float | None = None, repeats: int = 1,
                 rerun: int = 3, finalists: int = 2, sampler: str = "tpe",
                 seed: int | None = None, db: str | Path = DEFAULT_DB,
                 study_name: str | None = None, storage: str | None = None,
                 address: str | None = None, meter: str = "auto", name: str | None = None,
                 on_trial: Callable[[dict[str, Any]], None] | None = None,
                 driver: str = "auto", idle_seconds: float = 2.0,
                 tdp_scope: str = "host", max_hours: float = 1.0) -> ProgramTuneReport:
    """Tune ``fn``'s keyword arguments for joules; see ``docs/programs.md``.

    ``fn`` is the function (or ``"module:FUNCTION"`` / ``"file.py:FUNCTION"``), ``space``
    knob name → ``{"kind", "low", "high", "log", "step", "choices"}`` or the TOML file's
    path. ``driver``: ``inline`` calls the function in this process, ``process`` in a
    child driver per trial (for programs that call ``ray.init()`` themselves), ``auto``
    picks ``process`` when the function's code calls ``ray.init``. ``finalists``: how many
    of the cheapest settings are re-run against the defaults to pick the best. Bad arguments
    raise ConfigError before anything runs; a program that fails at its defaults raises
    RunFailed.
    A KeyboardInterrupt stops the trials; completed ones are kept (``interrupted`` set).
    """
    tune = prepare(fn, space, trials=trials, max_seconds=max_seconds, repeats=repeats,
                   rerun=rerun, finalists=finalists, sampler=sampler, seed=seed, db=db,
                   study_name=study_name, storage=storage, address=address, meter=meter,
                   name=name, driver=driver, idle_seconds=idle_seconds, tdp_scope=tdp_scope,
                   max_hours=max_hours)
    return run_tune(tune, on_trial=on_trial)


def run_tune(tune: ProgramTune,
             on_trial: Callable[[dict[str, Any]], None] | None = None,
             on_ready: Callable[[], None] | None = None) -> ProgramTuneReport:
    """Run a prepared tune: trials (defaults first), then the side-by-side re-run.

    ``on_ready()`` is called once Ray is reached and the study exists, before the first
    trial (where the command shows the storage and its progress bar: a tune refused on
    the way there prints its one line alone)."""
    import optuna
    import ray

    from rayjoule.cluster.connect import connect, disconnect

    # Ray first: an unreachable --address is bad input, found before the study is created
    started = connect(tune.address, local_env=LOCAL_RAY_ENV)
    interrupted = False
    try:
        with storage_lock(tune.storage), optuna_errors_only():
            study = optuna.create_study(
                storage=tune.storage, study_name=tune.study_name, load_if_exists=True,
                sampler=_sampler(tune), direction="minimize")
        for key, value in study_attrs(tune).items():
            study.set_user_attr(key, value)
        defaults = tune.space.defaults(tune.program.fn)
        if _baseline_trial(study) is None:  # new, or its defaults' trial was interrupted
            study.enqueue_trial(defaults, user_attrs={"baseline": True})
        if on_ready:
            on_ready()
        with Store(tune.db) as store:
            caller = ProgramCaller(tune.program, tune.driver, store, meter=tune.meter,
                                   idle_seconds=tune.idle_seconds, tdp_scope=tune.tdp_scope,
                                   ray_address=ray.get_runtime_context().gcs_address)
            session: list[int] = []
            objective = _Objective(tune, caller, session)
            callbacks = [lambda st, ft: on_trial(trial_row(ft))] if on_trial else []
            try:
                caller.warm_up(defaults)
                _optimize(study, objective, tune.trials, callbacks)
            except KeyboardInterrupt:
                interrupted = True
            report = build_report(study.get_trials(deepcopy=False),
                                  _baseline_trial(study), tune, session)
            report.interrupted = interrupted
            if not interrupted and report.best is not None and report.baseline is not None:
                rerun = side_by_side(caller, report.baseline["settings"],
                                     [f["settings"] for f in report.finalists], tune.rerun,
                                     study=tune.study_name)
                apply_rerun(report, rerun)
    finally:
        if started:
            disconnect()
    return report


#: for a Ray instance the tune starts itself: workers flush task events every 0.1 s (Ray's
#: default 1 s), and every trial's attribution waits one such interval (+ a grace) for them
#: (:func:`rayjoule.runs.measured_block.task_events.settle`), ~0.35 s instead of ~1.25 s
LOCAL_RAY_ENV = {"RAY_task_events_report_interval_ms": "100"}


def study_attrs(tune: ProgramTune) -> dict[str, Any]:
    """What a program's study tunes, kept in its user attributes: a study resumed by name
    must have the same (:func:`rayjoule.tuning.study_guard.check_study`)."""
    return {"program": tune.program.spec or tune.program.name, "space": tune.space.to_dict()}


def _sampler(tune: ProgramTune) -> Any:
    """The sampler, seeded by ``--seed`` (grid: 0 when none), at random otherwise."""
    import random

    seed = tune.seed if tune.seed is not None else \
        0 if tune.sampler == "grid" else random.randrange(2**31)
    return make_sampler(tune.sampler, seed, tune.space)


def _optimize(study: Any, objective: _Objective, n_trials: int,
              callbacks: list[Callable[[Any, Any], None]]) -> None:
    """Run the trials; the defaults' trial first, and a failure there stops the tune."""
    with optuna_errors_only(), warnings.catch_warnings():
        # the defaults are the baseline even where the space leaves them out (a knob
        # searched over 4..16 of a program that defaults to 1): not a warning on stderr
        warnings.filterwarnings("ignore", message="Fixed parameter .* is out of range",
                                category=UserWarning)
        baseline = _baseline_trial(study)
        if baseline is None or baseline.state.name == "WAITING":
            study.optimize(objective, n_trials=1, catch=(TrialFailed,), callbacks=callbacks)
            n_trials -= 1
            baseline = _baseline_trial(study)
        if baseline is not None and baseline.state.name == "FAIL":
            raise RunFailed(f"the program fails at its defaults "
                            f"{baseline.user_attrs.get('settings', baseline.params)}: "
                            f"{baseline.user_attrs.get('error', 'see the stored run')}")
        if n_trials > 0:
            study.optimize(objective, n_trials=n_trials, catch=(TrialFailed,),
                           callbacks=callbacks)


def _baseline_trial(study: Any) -> Any:
    """The trial of the program's defaults (one interrupted by Ctrl-C does not count)."""
    trials = study.get_trials(deepcopy=False)
    marked = [t for t in trials if t.user_attrs.get("baseline")
              and not t.user_attrs.get("interrupted")]
    return marked[0] if marked else None


class _Objective:
    """One trial: ``repeats`` metered calls, the median joules as the value."""

    def __init__(self, tune: ProgramTune, caller: ProgramCaller, session: list[int]) -> None:
        self.tune, self.caller, self.session = tune, caller, session

    def __call__(self, trial: Any) -> float:
        t0 = time.perf_counter()
        self.session.append(trial.number)
        settings = self.tune.space.suggest(trial)
        trial.set_user_attr("settings", settings)
        calls: list[Call] = []
        program_s = 0.0
        try:
            for _ in range(self.tune.repeats):
                try:
                    call = self.caller.call(settings, study=self.tune.study_name,
                                            trial=trial.number)
                except RunFailed as exc:
                    trial.set_user_attr("error", f"measuring failed: {exc}")
                    raise TrialFailed(str(exc)) from exc
                program_s += call.program_s
                trial.set_user_attr("run_ids", [*(c.run_id for c in calls), call.run_id])
                if not call.ok:
                    trial.set_user_attr("error", call.error or "the run failed")
                    log.warning("trial %d failed: %s", trial.number, call.error)
                    raise TrialFailed(call.error or "the run failed")
                calls.append(call)
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        finally:
            trial.set_user_attr("overhead_s", time.perf_counter() - t0 - program_s)
        mid = sorted(calls, key=lambda c: c.total_j)[len(calls) // 2]
        assert mid.run is not None
        attrs = {"total_j": statistics.median(c.total_j for c in calls),
                 "wall_s": statistics.median(c.run.wall_s for c in calls if c.run),
                 "stages": mid.stages, "run_id": mid.run_id,
                 "meter": mid.run.meter.name, "kind": mid.run.meter.kind}
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if self.tune.max_seconds:  # feasible when <= 0, as for workload tuning
            trial.set_constraint("max_seconds", attrs["wall_s"] - self.tune.max_seconds)
        return attrs["total_j"]
