"""Memory as a setting: recovered from profiles that vary it, used by the optimiser, which
holds no more memory than buys something; profiles that never vary it fit as before."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rayjoule.core.errors import ConfigError
from rayjoule.modelling import Profile, fit_stage, optimise

#: time in x = tasks·min(CPUs, memory/1769) (memory buys CPU share, capped at the CPUs
#: asked for); energy with a memory term of 3 W per GB held
LAW = {"a": 20.0, "b": 1.0, "c": 2.0, "d": 0.5, "p_static_w": 50.0, "e_work_j": 30.0,
       "e_task_j": 2.0, "p_memory_w_per_gb": 3.0}
MEMORY = (512.0, 1024.0, 1769.0, 3538.0)


def share_time(tasks: int, memory: float, size: float) -> float:
    x = tasks * min(1.0, memory / 1769.0)
    return size * (LAW["a"] / x + LAW["b"] * math.log(x) / x + LAW["c"] / x**2) + LAW["d"]


def plain_time(tasks: int, memory: float, size: float) -> float:
    x = float(tasks)
    return size * (LAW["a"] / x + LAW["b"] * math.log(x) / x + LAW["c"] / x**2) + LAW["d"]


def profiles(time_of, memory_power: float, memories=MEMORY, tasks=(1, 2, 4, 8, 16),
             sizes=(1.0, 2.0), repeats=2, noise=0.03, seed=3) -> list[Profile]:
    rng = np.random.default_rng(seed)
    out = []
    for n in tasks:
        for m in memories:
            for s in sizes:
                for r in range(repeats):
                    t = time_of(n, m, s) * (1 + noise * rng.standard_normal())
                    e = (LAW["p_static_w"] * t + LAW["e_work_j"] * s + LAW["e_task_j"] * n
                         + memory_power * n * m / 1024 * t)
                    out.append(Profile("synthetic", "map", n, 1.0, m, s, t,
                                       e * (1 + noise * rng.standard_normal()),
                                       run_id=f"{n}-{m}-{s}-{r}"))
    return out


def test_memory_that_buys_cpu_share_is_recovered_and_priced():
    model = fit_stage(profiles(share_time, LAW["p_memory_w_per_gb"]))
    assert model.memory_values == MEMORY
    assert model.time_form == "tasks*cpu_share"
    assert model.energy_memory
    params = model.params()
    lo, hi = params["energy"]["p_memory_w_per_gb"]["ci95"]
    assert lo <= LAW["p_memory_w_per_gb"] <= hi
    assert model.profiled_range["memory_mb"] == [512.0, 3538.0]
    # a setting's prediction follows the law at its memory
    for m in (512.0, 1769.0):
        pred = model.predict({"tasks": 4, "memory_mb": m}, 1.0)
        assert pred.settings["memory_mb"] == m
        assert pred.exec_s.low <= share_time(4, m, 1.0) <= pred.exec_s.high


def test_the_optimiser_holds_the_memory_that_buys_time_and_no_more():
    """Past 1769 MB memory buys no CPU share but still costs watts: the least-energy plan
    takes 1769, not the largest memory (nor a smaller one, which would run slower)."""
    model = fit_stage(profiles(share_time, LAW["p_memory_w_per_gb"]))
    plan = optimise({"map": model}, 1.0)
    assert plan.settings["map"]["memory_mb"] == 1769.0
    assert plan.stages["map"].settings["memory_mb"] == 1769.0


def test_memory_that_buys_nothing_stays_out_and_the_plan_takes_the_least():
    model = fit_stage(profiles(plain_time, 0.0, memories=(512.0, 1024.0, 2048.0)))
    assert model.memory_values == (512.0, 1024.0, 2048.0)
    assert model.time_form == "tasks" and not model.energy_memory
    assert any("buys nothing" in n for n in model.notes)
    plan = optimise({"map": model}, 1.0)
    assert plan.settings["map"]["memory_mb"] == 512.0
    # the landscape is flat in memory: every memory at the best task count is listed
    near = plan.near_optimal
    assert near.flat and {s["map"]["memory_mb"] for s in near.settings} >= {512.0, 1024.0,
                                                                             2048.0}


def test_profiles_that_never_vary_memory_fit_exactly_as_without_it():
    base = profiles(plain_time, 0.0, memories=(1024.0,))
    unknown = [Profile(p.workload, p.stage, p.tasks, p.num_cpus, None, p.size, p.wall_s,
                       p.total_j, run_id=p.run_id) for p in base]
    a, b = fit_stage(base), fit_stage(unknown)
    assert a.memory_values == b.memory_values == ()
    assert a.params() == b.params() and a.held_out_error == b.held_out_error
    assert "memory_mb" not in a.profiled_range
    # memory given where it is not a setting changes nothing
    with_m = a.predict({"tasks": 4, "memory_mb": 4096}, 1.0)
    without = b.predict({"tasks": 4}, 1.0)
    assert with_m.to_dict() == without.to_dict()


def test_a_memory_setting_needs_memory_to_predict():
    model = fit_stage(profiles(share_time, LAW["p_memory_w_per_gb"]))
    with pytest.raises(ConfigError, match="give memory"):
        model.predict({"tasks": 4}, 1.0)
