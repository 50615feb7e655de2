"""A stage's fitted time and energy models, and predictions from them with intervals.

Why apart from :mod:`.fit`: fitting chooses forms by held-out error over many refits
(:mod:`.fit`, :mod:`.fit_data`); what the optimiser, the pipeline and the commands use is
the fitted record — :class:`StageModel` samples it at any setting and says where it
extrapolates — and the settings readers that check what a caller asks of it.

The time law predicts what the profiles measured, ``exec_s``; cold starts that the
profiles kept apart are drawn from them and reported apart (:mod:`.estimates`). Memory (MB
per task) is a setting where the profiles vary it: :attr:`StageModel.memory_values` lists
the profiled values (:mod:`.forms` says how it enters time and energy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rayjoule.core.errors import ConfigError
from rayjoule.modelling import forms
from rayjoule.modelling.estimates import Estimate, Prediction

__all__ = ["N_SAMPLES", "StageModel", "read_memory", "read_settings", "read_size"]

N_SAMPLES = 2000


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


def _named(names: Sequence[str], fit: forms.LinearFit) -> dict[str, dict[str, Any]]:
    ci = fit.intervals()
    return {n: {"value": float(v), "ci95": [float(lo), float(hi)]}
            for n, v, (lo, hi) in zip(names, fit.coef, ci, strict=True)}
