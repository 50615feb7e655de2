"""Synthetic map → reduce (shuffle) profiles at a profiling design's runs, from a known law.

The modelling tests check that a fit recovers a law and the optimiser its optimum; they
need the same profiles a real profiling would store (the design's points and repeats, the
reader's fan-in, the run's slots), with relative noise on time and energy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rayjoule.modelling import Profile, ProfileDesign

#: (stage name, tasks, size, fan-in) → (seconds, joules) of one stage run under the law
StageLaw = Callable[[str, int, float, int], tuple[float, float]]


def shuffle_profiles(d: ProfileDesign, law: StageLaw, seed: int, noise: float,
                     slots: int) -> list[Profile]:
    """Every run of ``d``: a ``map`` profile and a ``reduce`` profile reading it through a
    shuffle (fan-in = the map's tasks), time and energy each × (1 + noise·N(0, 1))."""
    rng = np.random.default_rng(seed)
    out = []
    for i, p in enumerate(d.points):
        for k in range(d.repeats_of(p)):
            m, n = p.tasks["map"], p.tasks["reduce"]
            for name, tasks, u in (("map", m, 0), ("reduce", n, m)):
                t, e = law(name, tasks, p.size, u)
                out.append(Profile(
                    "synthetic", name, tasks, 1.0, None, float(p.size),
                    t * (1 + noise * rng.standard_normal()),
                    e * (1 + noise * rng.standard_normal()), run_id=f"{i}-{k}",
                    concurrency=slots, fan_in=m if name == "reduce" else None,
                    fan_in_stages=("map",) if name == "reduce" else ()))
    return out
