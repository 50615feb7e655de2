"""Fit one stage's time and energy models from its profiles, and predict with intervals.

Profile → train → predict are separate steps (flexecutor's split): :func:`fit_stage`
turns profiles into a :class:`StageModel`; :meth:`StageModel.predict` samples it at
any setting. Every fit reports its leave-one-setting-out error (each distinct setting
predicted by a model fitted without it), because an in-sample fit of four parameters
to five settings always looks good. Predictions outside the profiled range say so.

The time law predicts what the profiles measured, ``exec_s``; cold starts that the
profiles kept apart are drawn from them and reported apart (:mod:`.estimates`), and the
held-out error scores ``exec_s``. Memory (MB per task) is a setting where the profiles vary
it: :data:`StageModel.memory_values` lists the profiled values (:mod:`.forms` says how it
enters time and energy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rayjoule.core.errors import ConfigError
from rayjoule.modelling import forms
from rayjoule.modelling.estimates import Estimate, Prediction
from rayjoule.modelling.fit_data import HeldOut, StageData
from rayjoule.modelling.profiles import ModelError, Profile

_Data = StageData  # the name the form-choice test reads the held-out scores through
__all__ = ["Estimate", "Prediction", "StageModel", "fit_stage", "read_settings", "read_size",
           "read_memory"]

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
    #: the profiled memory values (MB per task) where the profiles vary memory — then
    #: memory is a setting (``memory_mb``) of every prediction; () where they do not
    memory_values: tuple[float, ...] = ()
    #: whether the energy model carries the memory term (watts per GB held)
    energy_memory: bool = False
    #: the run's slots (concurrency) the ``waves`` form counts waves of; None for others
    slots: int | None = None

    @property
    def time_only(self) -> bool:
        return self.energy_fit is None

    @property
    def exchange(self) -> bool:
        """Whether the forms carry the shuffle's exchange term (and need a fan-in)."""
        return bool(self.fan_in_stages)

    @property
    def memory_setting(self) -> bool:
        """Whether memory is a setting of this stage (its profiles vary it)."""
        return bool(self.memory_values)

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

    def _memory(self, memory: Any, m: int) -> np.ndarray | None:
        """Memory per setting where it is a setting (ignored where it is not)."""
        if not self.memory_setting:
            return None
        if memory is None or (not np.isscalar(memory) and any(v is None for v in memory)):
            values = ", ".join(f"{v:g}" for v in self.memory_values)
            raise ConfigError(f"stage {self.stage!r}: its profiles vary memory ({values} MB); "
                              "give memory (--at …,memory=M)")
        mem = np.broadcast_to(np.asarray(memory, float), (m,))
        if not (mem > 0).all():
            raise ConfigError(f"stage {self.stage!r}: memory must be > 0 MB, got {memory!r}")
        return mem

    def sample_parts(self, tasks: Sequence[int], num_cpus: Sequence[float], size: float, n: int,
                     rng: np.random.Generator, fan_in: Any = None, memory: Any = None
                     ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(n, m) draws of exec time, (n, 1) of cold start (None without cold starts) and
        (n, m) of energy (None when time-only) at m settings, one parameter draw per row.

        A row shares its parameter draw across settings (common random numbers), so
        settings compare without extra noise. ``fan_in`` (one per setting, or one for all)
        is the upstream task count of a stage that reads through a shuffle; ``memory`` (MB
        per task, likewise) is needed where memory is a setting (:attr:`memory_setting`).
        Energy is drawn at the run's whole time, exec + cold start.
        """
        tasks_a, cpus_a = np.asarray(tasks, float), np.asarray(num_cpus, float)
        u = self._fan_in(fan_in, tasks_a.size)
        mem = self._memory(memory, tasks_a.size)
        theta, sigma = self.time_fit.sample(n, rng)
        mean_t = theta @ forms.time_features(self.time_form, tasks_a, cpus_a, size, u, mem,
                                                 self.slots).T
        t = np.clip(mean_t * (1 + sigma[:, None] * rng.standard_normal((n, 1))), 0, None)
        cold = None
        if self.cold_starts:
            cold = rng.choice(np.asarray(self.cold_starts), size=(n, 1))
        if self.energy_fit is None:
            return t, cold, None
        run_t = t if cold is None else t + cold
        theta_e, sigma_e = self.energy_fit.sample(n, rng)
        e = theta_e[:, :1] * run_t + theta_e[:, 1:2] * size + theta_e[:, 2:3] * tasks_a
        k = 3
        if u is not None:
            e = e + theta_e[:, k:k + 1] * (u * tasks_a)
            k += 1
        if self.energy_memory:
            e = e + theta_e[:, k:k + 1] * (tasks_a * mem / forms.MB_PER_GB * run_t)
        return t, cold, np.clip(e * (1 + sigma_e[:, None] * rng.standard_normal((n, 1))), 0,
                                None)

    def sample(self, tasks: Sequence[int], num_cpus: Sequence[float], size: float, n: int,
               rng: np.random.Generator, fan_in: Any = None, memory: Any = None
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """(n, m) draws of wall time (exec + cold start) and energy: :meth:`sample_parts`
        with the parts added."""
        t, cold, e = self.sample_parts(tasks, num_cpus, size, n, rng, fan_in, memory)
        return (t if cold is None else t + cold), e

    def predict(self, settings: Mapping[str, Any], size: float, n_samples: int = N_SAMPLES,
                seed: int = 0) -> Prediction:
        """Median and 95% interval of exec time, cold start, wall time and joules at
        ``settings`` and ``size``.

        A stage that reads through a shuffle needs ``settings["fan_in"]``: the task count
        of the stage(s) it reads (:attr:`fan_in_stages`); one whose profiles vary memory
        needs ``settings["memory_mb"]``."""
        tasks, cpus = read_settings(settings)
        size = read_size(size)
        fan_in = settings.get("fan_in")
        memory = read_memory(settings)
        t, cold, e = self.sample_parts([tasks], [cpus], size, n_samples,
                                       np.random.default_rng(seed), fan_in=fan_in,
                                       memory=memory)
        return Prediction(self.stage, self.shown(settings), size, Estimate.of(t[:, 0]),
                          None if cold is None else Estimate.of(cold[:, 0]),
                          None if e is None else Estimate.of(e[:, 0]),
                          dict(self.held_out_error), self.warnings_at(settings, size))

    def shown(self, settings: Mapping[str, Any]) -> dict[str, float]:
        """The settings a prediction reports: tasks, CPUs, memory (where it is a setting) and
        fan-in (for a shuffle reader)."""
        tasks, cpus = read_settings(settings)
        out: dict[str, float] = {"tasks": tasks, "num_cpus": cpus}
        if self.memory_setting:
            out["memory_mb"] = float(settings["memory_mb"])
        if self.exchange and settings.get("fan_in") is not None:
            out["fan_in"] = int(settings["fan_in"])
        return out

    def extrapolates(self, settings: Mapping[str, Any], size: float) -> list[str]:
        """One warning per setting outside the profiled range (empty when inside)."""
        tasks, cpus = read_settings(settings)
        memory = read_memory(settings) if self.memory_setting else None
        out = []
        checks = [("tasks", tasks), ("num_cpus", cpus), ("size", float(size))]
        if self.exchange and settings.get("fan_in") is not None:
            checks.append(("fan_in", float(settings["fan_in"])))
        if memory is not None:
            checks.append(("memory_mb", memory))
        for name, value in checks:
            lo, hi = self.profiled_range[name]
            if not lo <= value <= hi:
                out.append(f"stage {self.stage!r}: {name}={value:g} is outside the profiled "
                           f"range {lo:g}..{hi:g}; the prediction extrapolates")
        in_box = not any(w for w in out if "tasks=" in w or "num_cpus=" in w
                         or "memory_mb=" in w)
        needs_memory = self.time_form in forms.MEMORY_FORMS and memory is None
        if self.parallelism_range is not None and in_box and not needs_memory:
            # inside the tasks and CPUs ranges, a combination never profiled can still put
            # the time law's input outside what was seen (8 tasks × 0.5 CPUs → x = 16)
            x = float(forms.parallelism(self.time_form, np.array(tasks, float),
                                        np.array(cpus, float),
                                        None if memory is None else np.array(memory)))
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
        mem = self._memory(read_memory(settings), 1)
        if self.time_fit.predict(forms.time_features(self.time_form, np.array([tasks]),
                                                     np.array([cpus]), size, u, mem,
                                                     self.slots))[0] <= 0:
            out.append(f"stage {self.stage!r}: the fitted time law gives no positive time at "
                       f"tasks={tasks} num_cpus={cpus:g} size={size:g}; it does not hold there")
        return out

    def params(self) -> dict[str, Any]:
        """Fitted parameters with 95% intervals, and the relative noise of each model."""
        out: dict[str, Any] = {"time_form": self.time_form,
                               "time": _named(forms.time_params(self.exchange, self.time_form),
                                              self.time_fit),
                               "wall_s_noise_rel": float(np.sqrt(self.time_fit.s2))}
        if self.slots is not None:
            out["slots"] = self.slots
        if self.exchange:
            out["fan_in_stages"] = list(self.fan_in_stages)
        if self.memory_setting:
            out["memory_mb_values"] = list(self.memory_values)
        if self.energy_fit is not None:
            out["energy"] = _named(forms.energy_params(self.exchange, self.energy_memory),
                                   self.energy_fit)
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


def read_memory(settings: Mapping[str, Any]) -> float | None:
    """``memory_mb`` from a settings mapping (None when not given)."""
    memory = settings.get("memory_mb")
    if memory is None:
        return None
    if isinstance(memory, bool) or not isinstance(memory, int | float) or not memory > 0:
        raise ConfigError(f"settings need memory_mb as a number > 0, got {memory!r}")
    return float(memory)


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
    data = StageData(profiles)
    name = f"stage {data.stage!r}"
    need_t, need_e = min_settings(data.exchange)
    what = " (with the shuffle's exchange term)" if data.exchange else ""
    _need(name, "time model" + what, data.n_settings, need_t)
    with_energy = bool(data.has_energy.any())
    if with_energy:
        _need(name, "energy model" + what, len(set(data.group[data.has_energy])), need_e)
    scores = {f: data.held_out(f, with_energy) for f in data.candidate_forms()
              if data.full_rank(f)}
    if not scores:
        raise ModelError(
            f"{name}: its {data.n_settings} settings vary tasks over only "
            f"{len(set(data.tasks))} value(s), too few to pin down the time model's "
            f"{len(data.time_params)} parameters; profile at least 4 distinct task counts"
            + (f" and vary the fan-in ({', '.join(data.fan_in_stages)}'s tasks) apart from "
               "them" if data.exchange else ""))
    form = _choose_form(scores)
    score = scores[form]
    energy_memory = False
    if with_energy and data.energy_memory_varies:
        with_mem = data.held_out(form, True, energy_memory=True)
        full = data.fit_energy(data.has_energy, True).rank == len(data.energy_params(True))
        # the memory term must beat the energy model without it by more than the noise
        if full and score.energy_pct > with_mem.energy_pct + with_mem.energy_se:
            energy_memory, score = True, HeldOut(score.exec_pct, with_mem.energy_pct,
                                                 score.exec_se, with_mem.energy_se)
    time_fit = data.fit_time(form, np.ones(data.n, bool))
    energy_fit = data.fit_energy(data.has_energy, energy_memory) if with_energy else None
    if energy_fit is not None and energy_fit.rank < len(data.energy_params(energy_memory)):
        raise ModelError(f"{name}: the profiles with energy do not vary size and tasks "
                         "enough to separate work from per-task energy")
    x = data.parallelism(form)
    ranges = [("tasks", data.tasks), ("num_cpus", data.cpus), ("size", data.size)]
    if data.exchange:
        ranges.append(("fan_in", data.fan_in))
    if data.memory is not None:
        ranges.append(("memory_mb", data.memory))
    return StageModel(
        stage=data.stage, workload=profiles[0].workload, time_form=form, time_fit=time_fit,
        energy_fit=energy_fit,
        cold_starts=tuple(p.cold_start_s for p in profiles if p.cold_start_s is not None),
        profiled_range={k: [float(v.min()), float(v.max())] for k, v in ranges},
        held_out_error={"method": HELD_OUT, "settings": data.n_settings, "quantity": "exec_s",
                        "exec_s_mape_pct": score.exec_pct, "wall_s_mape_pct": score.exec_pct,
                        "total_j_mape_pct": score.energy_pct},
        n_profiles=data.n, n_settings=data.n_settings,
        notes=tuple(_notes(profiles, data, form, energy_memory)),
        parallelism_range=(float(x.min()), float(x.max())), fan_in_stages=data.fan_in_stages,
        memory_values=() if data.memory is None else tuple(sorted(set(data.memory.tolist()))),
        energy_memory=energy_memory, slots=data.slots if form in forms.WAVE_FORMS else None,
    )


#: form tiers, simplest first: CPUs per task do not matter; they do; memory does too
_TIERS = (("tasks", *forms.WAVE_FORMS), tuple(forms.TIME_FORMS), tuple(forms.MEMORY_FORMS))


def _choose_form(scores: Mapping[str, Any]) -> str:
    """The form with the least held-out exec-time error — unless a simpler form is within one
    standard error of it (the one-standard-error rule), simpler meaning ``tasks`` or the
    waves forms (CPUs per task do not enter; the best of them) before the CPU forms
    before the memory forms: a form in which CPUs or memory matter has to beat one in which
    they do not by more than the noise of the comparison. A coin-flip win would let the
    optimiser pick CPUs per task on noise: on the 18:40 live ``pi`` profiles,
    ``tasks·num_cpus`` won by 30.5 % against 30.8 % (standard error 5.9 %) and chose 4 tasks
    × 2 CPUs, 1.21 × the sweep's best; ``tasks`` chooses 8 × 1 CPU, 1.02 ×.
    """
    best = min(scores, key=lambda f: scores[f][0])
    limit = scores[best][0] + scores[best][2]
    for tier in _TIERS:
        near = [f for f in tier if f in scores and scores[f][0] <= limit]
        if near:
            return min(near, key=lambda f: scores[f][0])
    return best


def _need(name: str, what: str, have: int, need: int) -> None:
    if have < need:
        raise ModelError(f"{name} has {have} distinct setting{'s' if have != 1 else ''}; the "
                         f"{what} needs at least {need} ({need - have} more)")


def _notes(profiles: Sequence[Profile], data: StageData, form: str,
           energy_memory: bool) -> list[str]:
    notes = []
    memories = sorted({p.memory_mb for p in profiles if p.memory_mb is not None})
    stage = profiles[0].stage
    if len(memories) > 1 and data.memory is None:
        notes.append(f"stage {stage!r}: memory_mb varies ({memories[0]:g}..{memories[-1]:g}) "
                     "but not every profile knows it, so it is not a setting; profiles "
                     "differing only in memory were pooled")
    elif data.memory is not None and form not in forms.MEMORY_FORMS and not energy_memory:
        notes.append(f"stage {stage!r}: memory varies ({memories[0]:g}..{memories[-1]:g} MB) "
                     "but enters neither time nor energy (the held-out error did not support "
                     "it): it buys nothing, so plans take the least")
    modelled = sum(p.energy_kind == "modelled" for p in profiles)
    if modelled:
        notes.append(f"stage {profiles[0].stage!r}: {modelled} of {len(profiles)} profiles' "
                     "energy was modelled, not measured; so is this prediction's")
    unknown = sum(p.energy_kind not in (None, "measured", "modelled") for p in profiles)
    if unknown:
        notes.append(f"stage {profiles[0].stage!r}: {unknown} of {len(profiles)} profiles' "
                     "energy came from a meter of unknown kind (imported without its "
                     "sidecar): this prediction's joules are not known to be measured")
    return notes


def _named(names: Sequence[str], fit: forms.LinearFit) -> dict[str, dict[str, Any]]:
    ci = fit.intervals()
    return {n: {"value": float(v), "ci95": [float(lo), float(hi)]}
            for n, v, (lo, hi) in zip(names, fit.coef, ci, strict=True)}
