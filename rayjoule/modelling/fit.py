"""Fit one stage's time and energy models from its profiles, and predict with intervals.

Profile → train → predict are separate steps (flexecutor's split): :func:`fit_stage`
turns profiles into a :class:`StageModel`; :meth:`StageModel.predict` samples it at
any setting. Every fit reports its leave-one-setting-out error (each distinct setting
predicted by a model fitted without it), because an in-sample fit of four parameters
to five settings always looks good. Predictions outside the profiled range say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rayjoule.core.errors import ConfigError
from rayjoule.modelling import forms
from rayjoule.modelling.profiles import ModelError, Profile

#: distinct settings each model needs: one more than its parameters, for the noise (a stage
#: that reads through a shuffle has one parameter more in each: :func:`forms.time_params`)
TIME_MIN_SETTINGS = len(forms.TIME_PARAMS) + 1
ENERGY_MIN_SETTINGS = len(forms.ENERGY_PARAMS) + 1


def min_settings(exchange: bool) -> tuple[int, int]:
    """Distinct settings the (time, energy) models need, with or without the exchange term."""
    return len(forms.time_params(exchange)) + 1, len(forms.energy_params(exchange)) + 1
N_SAMPLES = 2000
HELD_OUT = "leave-one-setting-out"


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

    def to_dict(self) -> dict[str, Any]:
        return {"median": self.median, "ci95": [self.low, self.high]}


@dataclass(frozen=True)
class Prediction:
    """One stage at one setting and size: wall time and energy (None when time-only)."""

    stage: str
    settings: dict[str, float]
    size: float
    wall_s: Estimate
    total_j: Estimate | None
    held_out_error: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "settings": dict(self.settings),
            "size": self.size,
            "wall_s": self.wall_s.to_dict(),
            "total_j": self.total_j.to_dict() if self.total_j else None,
            "held_out_error": dict(self.held_out_error),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class StageModel:
    """A stage's fitted time model, energy model (None: time-only) and their checks."""

    stage: str
    workload: str
    time_form: str
    time_fit: forms.LinearFit
    energy_fit: forms.LinearFit | None
    cold_starts: tuple[float, ...]
    profiled_range: dict[str, list[float]]
    held_out_error: dict[str, Any]
    n_profiles: int
    n_settings: int
    notes: tuple[str, ...] = ()
    #: effective parallelism x (the time law's input, under ``time_form``) that was profiled
    parallelism_range: tuple[float, float] | None = None
    #: the stages this one reads through a shuffle (their summed task count is its fan-in
    #: ``u``, an input of the exchange term); () for a stage without one
    fan_in_stages: tuple[str, ...] = ()

    @property
    def time_only(self) -> bool:
        return self.energy_fit is None

    @property
    def exchange(self) -> bool:
        """Whether the forms carry the shuffle's exchange term (and need a fan-in)."""
        return bool(self.fan_in_stages)

    def _fan_in(self, fan_in: Any, m: int) -> np.ndarray | None:
        if not self.exchange:
            return None
        if fan_in is None:
            raise ConfigError(f"stage {self.stage!r} reads {', '.join(self.fan_in_stages)} "
                              "through a shuffle: its prediction needs their task count "
                              "(fan_in)")
        u = np.broadcast_to(np.asarray(fan_in, float), (m,))
        if not (u >= 1).all():
            raise ConfigError(f"stage {self.stage!r}: fan_in must be >= 1, got {fan_in!r}")
        return u

    def sample(self, tasks: Sequence[int], num_cpus: Sequence[float], size: float, n: int,
               rng: np.random.Generator, fan_in: Sequence[int] | int | None = None
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """(n, m) draws of wall time and energy at m settings, one parameter draw per row.

        A row shares its parameter draw across settings (common random numbers), so
        settings compare without extra noise. ``fan_in`` (one per setting, or one for all)
        is the upstream task count of a stage that reads through a shuffle.
        """
        tasks_a, cpus_a = np.asarray(tasks, float), np.asarray(num_cpus, float)
        u = self._fan_in(fan_in, tasks_a.size)
        theta, sigma = self.time_fit.sample(n, rng)
        mean_t = theta @ forms.time_features(self.time_form, tasks_a, cpus_a, size, u).T
        t = np.clip(mean_t * (1 + sigma[:, None] * rng.standard_normal((n, 1))), 0, None)
        if self.cold_starts:
            t = t + rng.choice(np.asarray(self.cold_starts), size=(n, 1))
        if self.energy_fit is None:
            return t, None
        theta_e, sigma_e = self.energy_fit.sample(n, rng)
        e = theta_e[:, :1] * t + theta_e[:, 1:2] * size + theta_e[:, 2:3] * tasks_a
        if u is not None:
            e = e + theta_e[:, 3:4] * (u * tasks_a)
        return t, np.clip(e * (1 + sigma_e[:, None] * rng.standard_normal((n, 1))), 0, None)

    def predict(self, settings: Mapping[str, Any], size: float, n_samples: int = N_SAMPLES,
                seed: int = 0) -> Prediction:
        """Median and 95% interval of wall time and joules at ``settings`` and ``size``.

        A stage that reads through a shuffle needs ``settings["fan_in"]``: the task count
        of the stage(s) it reads (:attr:`fan_in_stages`)."""
        tasks, cpus = read_settings(settings)
        size = read_size(size)
        fan_in = settings.get("fan_in")
        t, e = self.sample([tasks], [cpus], size, n_samples, np.random.default_rng(seed),
                           fan_in=fan_in)
        shown: dict[str, float] = {"tasks": tasks, "num_cpus": cpus}
        if self.exchange:
            shown["fan_in"] = int(fan_in)
        return Prediction(self.stage, shown, size,
                          Estimate.of(t[:, 0]), None if e is None else Estimate.of(e[:, 0]),
                          dict(self.held_out_error), self.warnings_at(settings, size))

    def extrapolates(self, settings: Mapping[str, Any], size: float) -> list[str]:
        """One warning per setting outside the profiled range (empty when inside)."""
        tasks, cpus = read_settings(settings)
        out = []
        checks = [("tasks", tasks), ("num_cpus", cpus), ("size", float(size))]
        if self.exchange and settings.get("fan_in") is not None:
            checks.append(("fan_in", float(settings["fan_in"])))
        for name, value in checks:
            lo, hi = self.profiled_range[name]
            if not lo <= value <= hi:
                out.append(f"stage {self.stage!r}: {name}={value:g} is outside the profiled "
                           f"range {lo:g}..{hi:g}; the prediction extrapolates")
        in_box = not any(("tasks=" in w or "num_cpus=" in w) for w in out)
        if self.parallelism_range is not None and in_box:
            # inside the tasks and CPUs ranges, a combination never profiled can still put
            # the time law's input outside what was seen (8 tasks × 0.5 CPUs → x = 16)
            x = float(forms.TIME_FORMS[self.time_form](np.array(tasks, float),
                                                       np.array(cpus, float)))
            lo, hi = self.parallelism_range
            if not lo * (1 - 1e-9) <= x <= hi * (1 + 1e-9):
                out.append(f"stage {self.stage!r}: tasks={tasks} num_cpus={cpus:g} give an "
                           f"effective parallelism ({self.time_form}) of {x:g}, outside the "
                           f"profiled {lo:g}..{hi:g}; the prediction extrapolates")
        return out

    def warnings_at(self, settings: Mapping[str, Any], size: float) -> list[str]:
        """The model's notes, extrapolation warnings, and a warning where the fitted time
        law itself breaks down (a non-positive time, possible far outside the range)."""
        out = list(self.notes) + self.extrapolates(settings, size)
        tasks, cpus = read_settings(settings)
        u = self._fan_in(settings.get("fan_in"), 1)
        if self.time_fit.predict(forms.time_features(self.time_form, np.array([tasks]),
                                                     np.array([cpus]), size, u))[0] <= 0:
            out.append(f"stage {self.stage!r}: the fitted time law gives no positive time at "
                       f"tasks={tasks} num_cpus={cpus:g} size={size:g}; it does not hold there")
        return out

    def params(self) -> dict[str, Any]:
        """Fitted parameters with 95% intervals, and the relative noise of each model."""
        out: dict[str, Any] = {"time_form": self.time_form,
                               "time": _named(forms.time_params(self.exchange), self.time_fit),
                               "wall_s_noise_rel": float(np.sqrt(self.time_fit.s2))}
        if self.exchange:
            out["fan_in_stages"] = list(self.fan_in_stages)
        if self.energy_fit is not None:
            out["energy"] = _named(forms.energy_params(self.exchange), self.energy_fit)
            out["total_j_noise_rel"] = float(np.sqrt(self.energy_fit.s2))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "workload": self.workload, "time_only": self.time_only,
                "n_profiles": self.n_profiles, "n_settings": self.n_settings,
                "profiled_range": {k: list(v) for k, v in self.profiled_range.items()},
                "profiled_parallelism": None if self.parallelism_range is None
                else list(self.parallelism_range),
                "held_out_error": dict(self.held_out_error), "params": self.params(),
                "notes": list(self.notes)}


def read_settings(settings: Mapping[str, Any]) -> tuple[int, float]:
    """(tasks, num_cpus) from a settings mapping; num_cpus defaults to 1."""
    tasks, cpus = settings.get("tasks"), settings.get("num_cpus", 1.0)
    if isinstance(tasks, bool) or not isinstance(tasks, int | np.integer) or tasks < 1:
        raise ConfigError(f"settings need tasks as an integer >= 1, got {tasks!r}")
    if isinstance(cpus, bool) or not isinstance(cpus, int | float) or not cpus > 0:
        raise ConfigError(f"settings need num_cpus as a number > 0, got {cpus!r}")
    return int(tasks), float(cpus)


def read_size(size: Any) -> float:
    if isinstance(size, bool) or not isinstance(size, int | float) or not size > 0:
        raise ConfigError(f"size must be a number > 0, got {size!r}")
    return float(size)


def fit_stage(profiles: Sequence[Profile]) -> StageModel:
    """Fit a stage's models; raises ModelError when the profiles cannot support them."""
    if not profiles:
        raise ModelError("no profiles to fit: run profiling first")
    stages = sorted({p.stage for p in profiles})
    if len(stages) > 1:
        raise ModelError(f"fit_stage got profiles of several stages ({', '.join(stages)}); "
                         "fit each stage apart (fit_pipeline)")
    data = _Data(profiles)
    name = f"stage {data.stage!r}"
    need_t, need_e = min_settings(data.exchange)
    what = " (with the shuffle's exchange term)" if data.exchange else ""
    _need(name, "time model" + what, data.n_settings, need_t)
    with_energy = data.has_energy.any()
    if with_energy:
        _need(name, "energy model" + what, len(set(data.group[data.has_energy])), need_e)
    candidates = ["tasks"] if np.ptp(data.cpus) == 0 else list(forms.TIME_FORMS)
    scores = {f: data.held_out(f, with_energy) for f in candidates if data.full_rank(f)}
    if not scores:
        raise ModelError(
            f"{name}: its {data.n_settings} settings vary tasks over only "
            f"{len(set(data.tasks))} value(s), too few to pin down the time model's "
            f"{len(data.time_params)} parameters; profile at least 4 distinct task counts"
            + (f" and vary the fan-in ({', '.join(data.fan_in_stages)}'s tasks) apart from "
               "them" if data.exchange else ""))
    form = _choose_form(scores)
    time_fit = data.fit_time(form, np.ones(data.n, bool))
    energy_fit = data.fit_energy(data.has_energy) if with_energy else None
    if energy_fit is not None and energy_fit.rank < len(data.energy_params):
        raise ModelError(f"{name}: the profiles with energy do not vary size and tasks "
                         "enough to separate work from per-task energy")
    time_err, energy_err, _ = scores[form]
    x = forms.TIME_FORMS[form](data.tasks, data.cpus)
    return StageModel(
        stage=data.stage, workload=profiles[0].workload, time_form=form, time_fit=time_fit,
        energy_fit=energy_fit,
        cold_starts=tuple(p.cold_start_s for p in profiles if p.cold_start_s is not None),
        profiled_range={k: [float(v.min()), float(v.max())]
                        for k, v in (("tasks", data.tasks), ("num_cpus", data.cpus),
                                     ("size", data.size))
                        + ((("fan_in", data.fan_in),) if data.exchange else ())},
        held_out_error={"method": HELD_OUT, "settings": data.n_settings,
                        "wall_s_mape_pct": time_err, "total_j_mape_pct": energy_err},
        n_profiles=data.n, n_settings=data.n_settings, notes=tuple(_notes(profiles)),
        parallelism_range=(float(x.min()), float(x.max())), fan_in_stages=data.fan_in_stages,
    )


class _Data:
    """A stage's profiles as arrays, with the fits the held-out loop repeats."""

    def __init__(self, profiles: Sequence[Profile]) -> None:
        self.stage = profiles[0].stage
        self.n = len(profiles)
        self.tasks = np.array([p.tasks for p in profiles], float)
        self.cpus = np.array([p.num_cpus for p in profiles], float)
        self.size = np.array([p.size for p in profiles], float)
        self.wall = np.array([p.wall_s for p in profiles], float)
        self.cold = np.array([p.cold_start_s or 0.0 for p in profiles], float)
        self.energy = np.array([np.nan if p.total_j is None else p.total_j for p in profiles])
        self.has_energy = np.isfinite(self.energy)
        ups = {p.fan_in_stages for p in profiles}
        if len(ups) > 1:
            raise ModelError(f"stage {self.stage!r}: its profiles disagree on the stages it "
                             f"reads through a shuffle ({sorted(ups)}); fit one pipeline's "
                             "profiles at a time")
        self.fan_in_stages: tuple[str, ...] = ups.pop()
        self.exchange = bool(self.fan_in_stages)
        self.fan_in = np.array([p.fan_in or 0 for p in profiles], float)
        self.time_params = forms.time_params(self.exchange)
        self.energy_params = forms.energy_params(self.exchange)
        settings = [p.setting for p in profiles]
        index = {s: i for i, s in enumerate(dict.fromkeys(settings))}
        self.group = np.array([index[s] for s in settings])
        self.n_settings = len(index)

    def u(self, rows: np.ndarray) -> np.ndarray | None:
        return self.fan_in[rows] if self.exchange else None

    def features(self, form: str, rows: np.ndarray) -> np.ndarray:
        return forms.time_features(form, self.tasks[rows], self.cpus[rows], self.size[rows],
                                   self.u(rows))

    def full_rank(self, form: str) -> bool:
        return self.fit_time(form, np.ones(self.n, bool)).rank == len(self.time_params)

    def fit_time(self, form: str, rows: np.ndarray) -> forms.LinearFit:
        return forms.fit_linear(self.features(form, rows), self.wall[rows],
                                forms.time_lower(self.exchange))

    def fit_energy(self, rows: np.ndarray) -> forms.LinearFit:
        x = forms.energy_features(self.wall[rows] + self.cold[rows], self.size[rows],
                                  self.tasks[rows], self.u(rows))
        return forms.fit_linear(x, self.energy[rows], forms.energy_lower(self.exchange))

    def held_out(self, form: str, with_energy: bool) -> tuple[float, float | None, float]:
        """Mean absolute % error of each setting's mean, predicted without that setting (wall
        time, joules), and the standard error of the wall-time figure."""
        t_err, e_err = [], []
        for g in range(self.n_settings):
            out = self.group == g
            train, first = ~out, np.argmax(out)
            one = np.zeros(self.n, bool)
            one[first] = True
            t_hat = max(float(self.fit_time(form, train).predict(self.features(form, one))[0]),
                        0.0)
            t_err.append(abs(t_hat - self.wall[out].mean()) / self.wall[out].mean())
            e_rows = out & self.has_energy
            if with_energy and e_rows.any():
                t_run = t_hat + self.cold[train].mean()
                x = forms.energy_features(np.array([t_run]), self.size[first], self.tasks[first],
                                          None if not self.exchange else self.fan_in[first])
                e_hat = float(self.fit_energy(train & self.has_energy).predict(x)[0])
                e_err.append(abs(e_hat - self.energy[e_rows].mean()) / self.energy[e_rows].mean())
        se = float(np.std(t_err, ddof=1) / np.sqrt(len(t_err))) if len(t_err) > 1 else 0.0
        return (100 * float(np.mean(t_err)), (100 * float(np.mean(e_err)) if e_err else None),
                100 * se)


def _choose_form(scores: Mapping[str, tuple[float, float | None, float]]) -> str:
    """The form with the least held-out wall-time error — unless ``tasks`` (CPUs per task do
    not enter) is within one standard error of it: a form in which CPUs matter has to beat
    the one in which they do not by more than the noise of the comparison (the
    one-standard-error rule). A coin-flip win would let the optimiser pick CPUs per task on
    noise: on the 18:40 live ``pi`` profiles, ``tasks·num_cpus`` won by 30.5 % against
    30.8 % (standard error 5.9 %) and chose 4 tasks × 2 CPUs, 1.21 × the sweep's best;
    ``tasks`` chooses 8 × 1 CPU, 1.02 ×.
    """
    best = min(scores, key=lambda f: scores[f][0])
    if "tasks" in scores and scores["tasks"][0] <= scores[best][0] + scores[best][2]:
        return "tasks"
    return best


def _need(name: str, what: str, have: int, need: int) -> None:
    if have < need:
        raise ModelError(f"{name} has {have} distinct setting{'s' if have != 1 else ''}; the "
                         f"{what} needs at least {need} ({need - have} more)")


def _notes(profiles: Sequence[Profile]) -> list[str]:
    notes = []
    memories = sorted({p.memory_mb for p in profiles if p.memory_mb is not None})
    if len(memories) > 1:
        notes.append(f"stage {profiles[0].stage!r}: memory_mb varies ({memories[0]:g}.."
                     f"{memories[-1]:g}) but is not a model input; profiles differing only "
                     "in memory were pooled")
    modelled = sum(p.energy_kind == "modelled" for p in profiles)
    if modelled:
        notes.append(f"stage {profiles[0].stage!r}: {modelled} of {len(profiles)} profiles' "
                     "energy was modelled, not measured; so is this prediction's")
    return notes


def _named(names: Sequence[str], fit: forms.LinearFit) -> dict[str, dict[str, Any]]:
    ci = fit.intervals()
    return {n: {"value": float(v), "ci95": [float(lo), float(hi)]}
            for n, v, (lo, hi) in zip(names, fit.coef, ci, strict=True)}
