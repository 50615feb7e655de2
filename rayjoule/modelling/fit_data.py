"""A stage's profiles as arrays, with the fits that the held-out loop repeats.

Why apart from :mod:`.fit`: choosing a model (which form, whether memory enters the energy)
is a loop of refits on subsets of the same arrays; the fitted :class:`~.stage_model.StageModel` only
needs the winners. Time is fitted to ``exec_s`` (the profiles' ``wall_s``: what they
measured, without the cold starts they kept apart); energy to the run's whole time, cold
start included, since the hosts burn power through both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rayjoule.modelling import forms
from rayjoule.modelling.profiles import ModelError, Profile


@dataclass(frozen=True)
class HeldOut:
    """Leave-one-setting-out mean absolute % errors and their standard errors."""

    exec_pct: float
    energy_pct: float | None
    exec_se: float
    energy_se: float | None

    def __getitem__(self, i: int) -> float | None:
        """``(exec %, energy %, exec standard error)`` by index, as a tuple of old."""
        return (self.exec_pct, self.energy_pct, self.exec_se, self.energy_se)[i]


class StageData:
    """A stage's profiles as arrays, with the fits the held-out loop repeats."""

    def __init__(self, profiles: Sequence[Profile]) -> None:
        self.stage = profiles[0].stage
        self.n = len(profiles)
        self.tasks = np.array([p.tasks for p in profiles], float)
        self.cpus = np.array([p.num_cpus for p in profiles], float)
        self.size = np.array([p.size for p in profiles], float)
        self.wall = np.array([p.wall_s for p in profiles], float)  # exec_s
        self.cold = np.array([p.cold_start_s or 0.0 for p in profiles], float)
        self.energy = np.array([np.nan if p.total_j is None else p.total_j for p in profiles])
        self.has_energy = np.isfinite(self.energy)
        mem = np.array([np.nan if p.memory_mb is None else p.memory_mb for p in profiles])
        #: memory is a setting only where every profile knows it and the profiles vary it
        self.memory_varies = bool(np.isfinite(mem).all() and np.ptp(mem) > 0)
        self.memory = mem if self.memory_varies else None
        e_mem = mem[self.has_energy]
        self.energy_memory_varies = bool(self.memory_varies and e_mem.size
                                         and np.ptp(e_mem) > 0)
        ups = {p.fan_in_stages for p in profiles}
        if len(ups) > 1:
            raise ModelError(f"stage {self.stage!r}: its profiles disagree on the stages it "
                             f"reads through a shuffle ({sorted(ups)}); fit one pipeline's "
                             "profiles at a time")
        self.fan_in_stages: tuple[str, ...] = ups.pop()
        self.exchange = bool(self.fan_in_stages)
        self.fan_in = np.array([p.fan_in or 0 for p in profiles], float)
        self.time_params = forms.time_params(self.exchange)
        slots = {p.concurrency for p in profiles}
        #: the run's slots where every profile knows the same one (the waves form needs it)
        self.slots: int | None = slots.pop() if len(slots) == 1 else None
        settings = [p.setting for p in profiles]
        index = {s: i for i, s in enumerate(dict.fromkeys(settings))}
        self.group = np.array([index[s] for s in settings])
        self.n_settings = len(index)

    def energy_params(self, memory: bool = False) -> tuple[str, ...]:
        return forms.energy_params(self.exchange, memory)

    def candidate_forms(self) -> list[str]:
        """``tasks`` alone where CPUs never vary, the CPU forms where they do, ``waves``
        where CPUs never vary and the profiles share one known concurrency (a shuffle
        reader's exchange placed both ways: ``waves`` and ``waves_objects``), and the memory
        forms where memory varies."""
        same_cpus = np.ptp(self.cpus) == 0
        out = ["tasks"] if same_cpus else list(forms.TIME_FORMS)
        if same_cpus and self.slots is not None:
            out.extend(forms.WAVE_FORMS if self.exchange else (forms.WAVES,))
        return out + (list(forms.MEMORY_FORMS) if self.memory_varies else [])

    def u(self, rows: np.ndarray) -> np.ndarray | None:
        return self.fan_in[rows] if self.exchange else None

    def m(self, rows: np.ndarray) -> np.ndarray | None:
        return None if self.memory is None else self.memory[rows]

    def features(self, form: str, rows: np.ndarray) -> np.ndarray:
        return forms.time_features(form, self.tasks[rows], self.cpus[rows], self.size[rows],
                                   self.u(rows), self.m(rows), self.slots)

    def parallelism(self, form: str) -> np.ndarray:
        return forms.parallelism(form, self.tasks, self.cpus, self.memory)

    def full_rank(self, form: str) -> bool:
        return self.fit_time(form, np.ones(self.n, bool)).rank == len(
            forms.time_params(self.exchange, form))

    def fit_time(self, form: str, rows: np.ndarray) -> forms.LinearFit:
        return forms.fit_linear(self.features(form, rows), self.wall[rows],
                                forms.time_lower(self.exchange, form))

    def energy_x(self, t_run: np.ndarray, rows: np.ndarray, memory: bool) -> np.ndarray:
        return forms.energy_features(t_run, self.size[rows], self.tasks[rows], self.u(rows),
                                     self.m(rows) if memory else None)

    def fit_energy(self, rows: np.ndarray, memory: bool = False) -> forms.LinearFit:
        x = self.energy_x(self.wall[rows] + self.cold[rows], rows, memory)
        return forms.fit_linear(x, self.energy[rows], forms.energy_lower(self.exchange, memory))

    def held_out(self, form: str, with_energy: bool, energy_memory: bool = False) -> HeldOut:
        """Mean absolute % error of each setting's mean, predicted without that setting
        (exec time; joules, with or without the memory term), with standard errors."""
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
                t_run = np.array([t_hat + self.cold[train].mean()])
                x = self.energy_x(t_run, one, energy_memory)
                fit = self.fit_energy(train & self.has_energy, energy_memory)
                e_hat = float(fit.predict(x)[0])
                e_err.append(abs(e_hat - self.energy[e_rows].mean()) / self.energy[e_rows].mean())
        return HeldOut(100 * float(np.mean(t_err)),
                       100 * float(np.mean(e_err)) if e_err else None,
                       100 * _se(t_err), 100 * _se(e_err) if e_err else None)


def _se(errors: list[float]) -> float:
    return float(np.std(errors, ddof=1) / np.sqrt(len(errors))) if len(errors) > 1 else 0.0
