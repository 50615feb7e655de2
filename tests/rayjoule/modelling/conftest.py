"""Synthetic profiles drawn from a known law, so fits can be checked against the truth."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from rayjoule.modelling import Profile

#: the law the synthetic profiles follow (time in the 'tasks' form, energy as in forms.py)
LAW = {"a": 20.0, "b": 1.0, "c": 2.0, "d": 0.5, "p_static_w": 50.0, "e_work_j": 30.0,
       "e_task_j": 2.0}


def law_time(tasks: float, cpus: float, size: float, law: dict = LAW, form: str = "tasks"
             ) -> float:
    x = tasks * cpus if form == "tasks*num_cpus" else tasks
    return size * (law["a"] / x + law["b"] * math.log(x) / x + law["c"] / x**2) + law["d"]


def law_energy(tasks: float, t: float, size: float, law: dict = LAW) -> float:
    return law["p_static_w"] * t + law["e_work_j"] * size + law["e_task_j"] * tasks


def make(tasks=(1, 2, 4, 8, 16, 32), cpus=(1.0,), sizes=(1.0, 2.0), repeats=2, noise=0.03,
         seed=1, law=LAW, form="tasks", energy=True, stage="map") -> list[Profile]:
    rng = np.random.default_rng(seed)
    out = []
    for x in tasks:
        for k in cpus:
            for s in sizes:
                for r in range(repeats):
                    t = law_time(x, k, s, law, form) * (1 + noise * rng.standard_normal())
                    e = law_energy(x, t, s, law) * (1 + noise * rng.standard_normal())
                    out.append(Profile("synthetic", stage, x, k, None, s, t,
                                       e if energy else None, run_id=f"{stage}-{x}-{k}-{s}-{r}"))
    return out


@pytest.fixture
def synth() -> SimpleNamespace:
    """``make(...)`` profiles, the ``law`` and its ``time``/``energy`` functions."""
    return SimpleNamespace(make=make, law=LAW, time=law_time, energy=law_energy)
