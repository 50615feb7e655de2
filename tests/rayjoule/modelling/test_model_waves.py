"""The waves form: tasks beyond the run's slots queue, and each pays its start-up per wave.

Synthetic profiles follow a known waves law (2 slots, a fixed start-up per task, as a
worker that builds a table before working); the fit must choose the form, recover its
parameters within their intervals, and the optimiser must pick the task count the law
makes cheapest — which the ``tasks`` form, whose time only falls with more tasks, cannot.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from rayjoule.modelling import Profile, fit_stage
from rayjoule.modelling.optimise import optimise
from tests_support.synthetic_profiles import shuffle_profiles

SLOTS = 2
#: a: s per unit of work; h_task_s: one task's start-up; c_serial: unsplit work; d: overhead
LAW = {"a": 4e-5, "h_task_s": 0.4, "c_serial": 2e-6, "d": 0.1}
STATIC_W, WORK_J, TASK_J = 6.0, 2e-5, 0.3


def law_time(tasks: int, size: float, law: dict = LAW, slots: int = SLOTS) -> float:
    w = math.ceil(tasks / slots)
    return law["a"] * size * w / tasks + law["h_task_s"] * w + law["c_serial"] * size + law["d"]


def law_energy(tasks: int, t: float, size: float) -> float:
    return STATIC_W * t + WORK_J * size + TASK_J * tasks


def profiles(noise: float = 0.02, concurrency: int | None = SLOTS, seed: int = 4,
             law: dict = LAW) -> list[Profile]:
    """The profiling design's shape: task counts 1..8 at ⅛ of the size, ends at ½, twice."""
    rng = np.random.default_rng(seed)
    out = []
    points = [(n, 37_500.0) for n in (1, 2, 3, 4, 6, 8)] + [(n, 150_000.0) for n in (1, 8)]
    for n, s in points:
        for r in range(2):
            t = law_time(n, s, law) * (1 + noise * rng.standard_normal())
            e = law_energy(n, t, s) * (1 + noise * rng.standard_normal())
            out.append(Profile("synthetic", "map", n, 1.0, None, s, t, e,
                               run_id=f"{n}-{s}-{r}", concurrency=concurrency))
    return out


def test_the_waves_law_is_chosen_and_recovered_within_its_intervals():
    model = fit_stage(profiles())
    params = model.params()
    assert params["time_form"] == "waves" and params["slots"] == SLOTS
    for name, value in LAW.items():
        lo, hi = params["time"][name]["ci95"]
        assert lo <= value <= hi, (name, params["time"][name])
    held = model.held_out_error
    assert held["exec_s_mape_pct"] < 5


def test_its_predictions_cover_the_law_beyond_the_slots_and_the_profiled_size():
    model = fit_stage(profiles())
    for tasks in (2, 3, 8):
        pred = model.predict({"tasks": tasks, "num_cpus": 1.0}, 300_000.0)
        t = law_time(tasks, 300_000.0)
        assert pred.exec_s.low <= t <= pred.exec_s.high
        assert pred.total_j.low <= law_energy(tasks, t, 300_000.0) <= pred.total_j.high


def test_the_optimiser_picks_as_many_tasks_as_slots_where_start_ups_dominate():
    model = fit_stage(profiles())
    truth = {n: law_energy(n, law_time(n, 300_000.0), 300_000.0) for n in (1, 2, 4, 8)}
    assert min(truth, key=truth.get) == SLOTS  # the law's optimum: one wave, both slots
    plan = optimise({"map": model}, 300_000.0)
    assert plan.settings["map"]["tasks"] == SLOTS
    # the tasks form, fitted on the same profiles without the slots, misses it
    blind = fit_stage([dataclasses.replace(p, concurrency=None) for p in profiles()])
    assert blind.time_form == "tasks"
    assert blind.held_out_error["exec_s_mape_pct"] > 2 * model.held_out_error["exec_s_mape_pct"]


def test_where_there_are_no_waves_the_tasks_form_stays():
    """A law with no start-up and work that keeps splitting past the slots (tasks that do
    not queue): the waves form has nothing to add and the simpler tier keeps ``tasks``
    unless waves beats it by more than the noise."""
    rng = np.random.default_rng(5)
    out = []
    for n in (1, 2, 4, 8, 16):
        for s in (1.0, 2.0):
            for r in range(2):
                t = (20 * s / n + 0.5) * (1 + 0.02 * rng.standard_normal())
                out.append(Profile("synthetic", "map", n, 1.0, None, s, t, 50 * t + 3 * s,
                                   run_id=f"{n}-{s}-{r}", concurrency=16))
    assert fit_stage(out).time_form in ("tasks", "waves")
    pred = fit_stage(out).predict({"tasks": 8, "num_cpus": 1.0}, 1.5)
    assert pred.exec_s.low <= 20 * 1.5 / 8 + 0.5 <= pred.exec_s.high


@pytest.mark.parametrize("concurrency", [None])
def test_profiles_without_a_known_concurrency_never_get_the_waves_form(concurrency):
    model = fit_stage(profiles(concurrency=concurrency))
    assert model.time_form == "tasks" and "slots" not in model.params()


def test_a_shuffle_reader_in_waves_recovers_its_exchange_and_the_joint_optimum():
    """map → bucket route → reduce on 2 slots, at the profiling design's runs: the reducer's
    tasks queue in waves and each reads one object per map task (``g·u·w`` seconds). Over
    ten noise draws the fit takes the waves form for both stages (the reader's exchange per
    wave, not ``waves_objects``), the exchange term's estimate is within 10 % of the law's
    g, and the plan at the never-profiled target size is the law's joint optimum."""
    from rayjoule.core.config import RunConfig
    from rayjoule.modelling import design, fit_pipeline

    counts, target = (1, 2, 4, 8), 2_000_000.0
    m_law = {"a": 6e-7, "h_task_s": 0.3, "c_serial": 0.0, "d": 0.1}
    r_law = {"a": 1e-6, "h_task_s": 0.2, "c_serial": 0.0, "d": 0.05, "g": 0.08}

    def stage(law: dict, n: int, s: float, u: int = 0) -> tuple[float, float]:
        t = law_time(n, s, law) + law.get("g", 0.0) * u * math.ceil(n / SLOTS)
        return t, law_energy(n, t, s)

    def total(m: int, r: int) -> float:
        return stage(m_law, m, target)[1] + stage(r_law, r, target, u=m)[1]

    d = design(RunConfig(workload="wordcount", size=target, framework="native",
                         concurrency=SLOTS, meter="tdp"))
    ranked = sorted(((m, r) for m in counts for r in counts), key=lambda mr: total(*mr))
    best = ranked[0]
    assert total(*ranked[1]) > 1.02 * total(*best)  # one clear optimum
    covered = 0
    for seed in range(10):
        out = shuffle_profiles(
            d, lambda name, tasks, size, u: stage(m_law if name == "map" else r_law, tasks,
                                                  size, u), seed, 0.02, SLOTS)
        models = fit_pipeline(out).models
        # the exchange per wave wins over the one that counts the objects over the slots
        assert models["reduce"].time_form == "waves" and models["map"].time_form == "waves"
        g = models["reduce"].params()["time"]["g"]
        assert g["ci95"][0] > 0 and abs(g["value"] - r_law["g"]) <= 0.1 * r_law["g"], g
        covered += g["ci95"][0] <= r_law["g"] <= g["ci95"][1]
        plan = optimise(models, target, candidates={s: {"tasks": list(counts)} for s in models})
        assert (plan.settings["map"]["tasks"], plan.settings["reduce"]["tasks"]) == best
    assert covered >= 7, covered  # 95 % intervals, a little narrow at this design
