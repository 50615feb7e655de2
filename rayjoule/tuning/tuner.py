"""Optuna searches the settings that minimise measured joules.

Trials run one at a time: the meters see the whole host, so two trials at
once would pollute each other's joules. Each trial is one ``rayjoule.run``
(``repeats`` times, median taken), stored in the results store and linked to
its trial; the trial's user attributes hold its joules, wall time, meter,
kind and run id, so ``optuna-dashboard`` shows where every number came from.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import statistics
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rayjoule.core.config import RunConfig
from rayjoule.core.errors import ConfigError, RunFailed
from rayjoule.core.result import RunResult
from rayjoule.runs.store import Store
from rayjoule.tuning.space import MAX_GRID_POINTS, SearchSpace

log = logging.getLogger(__name__)

SAMPLERS = ("tpe", "gp", "random", "grid")
METRICS = {"energy": "total_j", "dynamic": "dynamic_j", "time": "wall_s"}
METRIC_LABELS = {"energy": "total joules", "dynamic": "dynamic joules",
                 "time": "wall seconds"}


def check_seed(seed: int | None) -> None:
    """Optuna's samplers seed NumPy, which takes 0 to 2**32 - 1 (a larger seed was a
    traceback after the study was created)."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                             or not 0 <= seed < 2**32):
        raise ConfigError(f"--seed must be a whole number from 0 to {2**32 - 1}, got {seed!r}")


def parse_objective(text: str) -> tuple[str, ...]:
    """``"energy"``, ``"dynamic"`` or a pair such as ``"energy,time"`` (a Pareto front)."""
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    if not names or len(names) > 2 or len(set(names)) != len(names) or \
            any(n not in METRICS for n in names):
        raise ConfigError(
            f"--objective must be energy, dynamic, or two of them with time "
            f"(e.g. energy,time); got {text!r}")
    if len(names) == 1 and names[0] == "time":
        raise ConfigError("--objective time alone does not involve energy; use energy,time")
    return names


def default_storage(db: str | Path) -> str:
    """An Optuna SQLite file beside the results store: ``x.sqlite`` → ``x.optuna.sqlite``.

    The path is percent-encoded, as SQLAlchemy reads it: a folder named ``a?b`` would
    otherwise end the path at ``?`` (the storage written to a file ``a`` beside it).
    """
    from urllib.parse import quote

    path = Path(db).expanduser().resolve()
    return f"sqlite:///{quote(str(path.with_name(path.stem + '.optuna.sqlite')), safe='/')}"


@dataclass
class TuneSettings:
    base: RunConfig
    space: SearchSpace
    objective: tuple[str, ...] = ("energy",)
    max_seconds: float | None = None
    repeats: int = 1
    sampler: str = "tpe"
    seed: int = 0
    storage: str = ""
    study_name: str = ""
    prune: bool = True

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler {self.sampler!r}; known: {', '.join(SAMPLERS)}")
        if self.max_seconds is not None and not (self.max_seconds > 0
                                                 and math.isfinite(self.max_seconds)):
            raise ConfigError(f"--max-seconds must be > 0 and finite, got {self.max_seconds}")
        check_seed(self.seed)
        if self.repeats < 1:
            raise ConfigError(f"--repeats must be >= 1, got {self.repeats}")
        if not self.study_name:
            self.study_name = default_study_name(self)


def study_attrs(s: TuneSettings) -> dict[str, Any]:
    """What a study tunes, kept in its user attributes: a study resumed by name must have
    the same (:func:`rayjoule.tuning.study_guard.check_study`)."""
    base = s.base
    return {"workload": base.workload, "size": base.size, "seed": base.seed,
            "params": dict(base.params), "frameworks": list(s.space.frameworks),
            "objective": ",".join(s.objective), "max_seconds": s.max_seconds}


def default_study_name(s: TuneSettings) -> str:
    name = (f"{s.base.workload}-size{s.base.size}-seed{s.base.seed}-"
            f"{'+'.join(s.space.frameworks)}-{'+'.join(s.objective)}")
    return name + (f"-max{s.max_seconds:g}s" if s.max_seconds else "")


@dataclass
class TuneReport:
    """What a study has found so far (over every completed trial, resumed ones included)."""

    study_name: str
    storage: str
    objective: tuple[str, ...]
    max_seconds: float | None
    trials: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    pareto: list[dict[str, Any]] = field(default_factory=list)
    meter: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "study_name": self.study_name, "storage": self.storage,
            "objective": ",".join(self.objective), "max_seconds": self.max_seconds,
            "meter": self.meter, "best": self.best, "pareto": self.pareto, "trials": self.trials,
        }


class Tuner:
    """Runs an Optuna study over :class:`SearchSpace` with rayjoule runs as the objective."""

    def __init__(self, settings: TuneSettings, db: Store) -> None:
        import optuna

        self.s = settings
        self.db = db
        self._optuna = optuna
        self._callbacks: list[Callable[[Any, Any], None]] = []
        multi = len(settings.objective) > 1
        with warnings.catch_warnings():  # WilcoxonPruner is "experimental" since 3.6
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            pruner = (optuna.pruners.WilcoxonPruner(p_threshold=0.1)
                      if settings.prune and not multi and settings.repeats > 1
                      else optuna.pruners.NopPruner())
        with storage_lock(settings.storage), optuna_errors_only():
            self.study = optuna.create_study(
                storage=settings.storage, study_name=settings.study_name, load_if_exists=True,
                sampler=make_sampler(settings.sampler, settings.seed, settings.space),
                pruner=pruner, directions=["minimize"] * len(settings.objective),
            )
        stored = self.study.directions
        if len(stored) != len(settings.objective):
            raise ConfigError(f"study {settings.study_name!r} exists with {len(stored)} "
                              "objective(s); use another --study-name")
        # what optuna-dashboard shows: "total joules", not "Objective 0"
        with warnings.catch_warnings():  # set_metric_names is "experimental" since 3.2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study.set_metric_names([METRIC_LABELS[o] for o in settings.objective])
        for key, value in study_attrs(settings).items():
            self.study.set_user_attr(key, value)

    def add_callback(self, callback: Callable[[Any, Any], None]) -> None:
        """Call ``callback(study, frozen_trial)`` after every trial of :meth:`optimize`.

        The hook for seeding strategies that learn as trials arrive (``--sampler model``
        refits its models and enqueues a new predicted optimum); callbacks run in the
        order added, before ``on_trial``.
        """
        self._callbacks.append(callback)

    def optimize(self, n_trials: int, on_trial: Callable[[Any], None] | None = None) -> None:
        """Run ``n_trials`` more trials; a failing run is a FAIL trial and the study goes on."""
        callbacks = [*self._callbacks, *([lambda study, ft: on_trial(ft)] if on_trial else [])]
        with optuna_errors_only():
            self.study.optimize(self._objective, n_trials=n_trials, catch=(RunFailed,),
                                callbacks=callbacks)

    def _objective(self, trial) -> float | tuple[float, ...]:
        from rayjoule.runs.session import run

        params = self.s.space.suggest(trial)
        config = dataclasses.replace(self.s.base, **params, repeats=self.s.repeats)
        trial.set_user_attr("config", {k: config.to_dict()[k] for k in params})
        values: list[RunResult] = []
        metric = METRICS[self.s.objective[0]]

        def on_repeat(result: RunResult) -> None:
            values.append(result)
            if len(self.s.objective) == 1 and self.s.repeats > 1:
                trial.report(metric_of(result, metric), step=len(values) - 1)
                if trial.should_prune():
                    self._record(trial, values, pruned=True)
                    raise self._optuna.TrialPruned()

        try:
            result = run(config, db=self.db, on_repeat=on_repeat,
                         study=self.s.study_name, trial=trial.number)
        except RunFailed as exc:
            trial.set_user_attr("error", str(exc))
            raise
        attrs = self._record(trial, values, pruned=False, result=result)
        if self.s.max_seconds:  # feasible when ≤ 0; TPE and GP read it through the trial
            trial.set_constraint("max_seconds", attrs["wall_s"] - self.s.max_seconds)
        return tuple(attrs[METRICS[o]] for o in self.s.objective) if len(self.s.objective) > 1 \
            else attrs[METRICS[self.s.objective[0]]]

    @staticmethod
    def _record(trial, values: list[RunResult], pruned: bool,
                result: RunResult | None = None) -> dict[str, Any]:
        """Median figures over the repeats so far, as the trial's user attributes."""
        if not trial.study.user_attrs.get("meter"):
            trial.study.set_user_attr("meter", values[-1].meter.name)
            trial.study.set_user_attr("kind", values[-1].meter.kind)
        attrs = {
            "total_j": statistics.median(r.energy.total_j for r in values),
            "static_j": statistics.median(r.energy.static_j for r in values),
            "dynamic_j": statistics.median(r.energy.dynamic_j for r in values),
            "overhead_j": statistics.median(r.energy.overhead_j for r in values),
            "wall_s": statistics.median(r.wall_s for r in values),
            "meter": values[-1].meter.name,
            "kind": values[-1].meter.kind,
            "run_id": result.run_id if result else values[-1].run_id,
            "repeat_run_ids": [r.run_id for r in values],
            "pruned_after_repeats": len(values) if pruned else None,
        }
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        return attrs

    def report(self) -> TuneReport:
        return build_report(self.study, self.s)


@contextlib.contextmanager
def storage_lock(url: str) -> Iterator[None]:
    """Serialise creating an Optuna SQLite storage and its study between processes.

    Two ``tune`` commands started together on a new storage would both run Optuna's schema
    migration and one would fail on a unique constraint; an advisory lock on a file beside
    the database makes the second wait for the first (other storages need no lock).
    """
    from rayjoule.tuning.study_guard import sqlite_path

    path = sqlite_path(url)
    if path is None:
        yield
        return
    import fcntl

    lock_path = path.with_name(path.name + ".lock")
    try:
        handle = open(lock_path, "a")  # noqa: SIM115 - held for the block
    except OSError:  # a read-only folder: nothing to race on, Optuna reports the real error
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def optuna_errors_only() -> Iterator[None]:
    """While trials run, Optuna's logger shows errors only: a failed or interrupted trial is
    reported by rayjoule in one line (its error is kept in the trial's user attributes),
    not as Optuna's warning with a traceback. The logger's level is restored afterwards."""
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def make_sampler(name: str, seed: int, space: SearchSpace):
    """The Optuna sampler for ``--sampler`` (shared with the replay benchmark)."""
    import optuna

    samplers = optuna.samplers
    if name == "tpe":
        return samplers.TPESampler(seed=seed, n_startup_trials=5, multivariate=True)
    if name == "gp":
        try:
            import scipy  # noqa: F401
            import torch  # noqa: F401
        except ImportError:
            raise ConfigError("--sampler gp needs PyTorch: pip install 'rayjoule[gp]'") from None
        return samplers.GPSampler(seed=seed, n_startup_trials=5)
    if name == "random":
        return samplers.RandomSampler(seed=seed)
    if name == "grid":
        grid = space.grid()
        points = math.prod(len(v) for v in grid.values())
        if points > MAX_GRID_POINTS:
            raise ConfigError(f"--sampler grid would list {points:.3g} points "
                              f"(at most {MAX_GRID_POINTS}); narrow the ranges or use tpe")
        return samplers.GridSampler(grid, seed=seed)
    raise ConfigError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")


def metric_of(result: RunResult, metric: str) -> float:
    """A result's figure for a METRICS name (joules from its energy, or its wall time)."""
    return result.wall_s if metric == "wall_s" else getattr(result.energy, metric)


def _trial_row(ft) -> dict[str, Any]:
    ua = ft.user_attrs
    return {
        "number": ft.number, "state": ft.state.name,
        "params": dict(ua.get("config", ft.params)),
        "total_j": ua.get("total_j"), "dynamic_j": ua.get("dynamic_j"),
        "wall_s": ua.get("wall_s"), "meter": ua.get("meter"), "kind": ua.get("kind"),
        "run_id": ua.get("run_id"), "error": ua.get("error"),
        "feasible": all(v <= 0 for v in (ft.constraints or {}).values()),
    }


def build_report(study, s: TuneSettings) -> TuneReport:
    """Best (feasible) settings, Pareto front and every trial of a study."""
    rows = [_trial_row(ft) for ft in study.get_trials(deepcopy=False)]
    done = [r for r in rows if r["state"] == "COMPLETE" and r["feasible"]]
    metric = METRICS[s.objective[0]]
    best_row = min(done, key=lambda r: r[metric]) if done else None
    pareto: list[dict[str, Any]] = []
    if len(s.objective) > 1:
        keys = [METRICS[o] for o in s.objective]
        pareto = sorted(_non_dominated(done, keys), key=lambda r: r[keys[0]])
    meter = {"name": best_row["meter"], "kind": best_row["kind"]} if best_row else None
    best = None if best_row is None else {
        k: best_row[k] for k in ("params", "total_j", "dynamic_j", "wall_s", "run_id", "number")
    }
    return TuneReport(s.study_name, s.storage, s.objective, s.max_seconds, rows, best, pareto,
                      meter)


def _non_dominated(rows: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    def dominates(a, b):
        return all(a[k] <= b[k] for k in keys) and any(a[k] < b[k] for k in keys)

    return [r for r in rows if not any(dominates(o, r) for o in rows if o is not r)]
