"""The optimiser: the law's optimum, the chance constraint, time-only plans, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

from rayjoule.core.errors import ConfigError
from rayjoule.modelling import ModelError, fit_stage, optimise

GRID = {"tasks": [1, 2, 4, 8, 16, 32], "num_cpus": [1.0]}


def test_the_plan_finds_the_laws_least_energy_settings(synth):
    # per-task energy makes the optimum interior: 8 tasks for 'map', 2 for 'reduce'
    law_map = dict(synth.law, e_task_j=8.0)
    law_red = dict(synth.law, a=2.0, e_task_j=8.0)
    models = {"map": fit_stage(synth.make(law=law_map, sizes=(1.0,), repeats=3)),
              "reduce": fit_stage(synth.make(law=law_red, sizes=(1.0,), repeats=3,
                                             stage="reduce"))}
    plan = optimise(models, size=1.0, candidates={"map": GRID, "reduce": GRID})
    for stage, law in (("map", law_map), ("reduce", law_red)):
        truth = [synth.energy(x, synth.time(x, 1.0, 1.0, law), 1.0, law) for x in GRID["tasks"]]
        assert plan.settings[stage]["tasks"] == GRID["tasks"][int(np.argmin(truth))]
    assert plan.objective == "energy" and plan.p_within_bound is None
    assert plan.total_j.low <= plan.total_j.median <= plan.total_j.high


def test_plan_to_dict_has_stable_keys(synth):
    model = fit_stage(synth.make())
    d = optimise({"map": model}, 1.0, max_seconds=100).to_dict()
    assert set(d) == {"objective", "settings", "size", "exec_s", "cold_start_s", "wall_s",
                      "total_j", "max_seconds", "confidence", "p_within_bound", "stages",
                      "held_out_error", "warnings", "plans_considered", "near_optimal"}
    assert d["cold_start_s"] is None and d["wall_s"] == d["exec_s"]
    assert d["near_optimal"]["plans"][0]["settings"] == d["settings"]
    assert set(d["settings"]["map"]) == {"tasks", "num_cpus"}
    assert set(d["wall_s"]) == {"median", "ci95"} and set(d["total_j"]) == {"median", "ci95"}
    assert d["held_out_error"]["map"]["method"] == "leave-one-setting-out"
    assert d["stages"]["map"]["settings"] == d["settings"]["map"]


def _slow_is_frugal(synth):
    """One stage whose least-energy setting (1 task) is the slowest, noisy enough to matter."""
    law = dict(synth.law, p_static_w=1.0, e_task_j=20.0)
    return {"map": fit_stage(synth.make(law=law, sizes=(1.0,), repeats=3, noise=0.08))}, law


def test_a_tight_bound_with_high_confidence_changes_the_choice(synth):
    models, _ = _slow_is_frugal(synth)
    grid = {"map": GRID}
    assert optimise(models, 1.0, candidates=grid).settings["map"]["tasks"] == 1
    # just above the frugal plan's median time: met half the time, not 95% of it
    bound = models["map"].predict({"tasks": 1}, 1.0).wall_s.median * 1.05
    loose = optimise(models, 1.0, candidates=grid, max_seconds=bound, confidence=0.5)
    tight = optimise(models, 1.0, candidates=grid, max_seconds=bound, confidence=0.95)
    assert loose.settings["map"]["tasks"] == 1 and 0.5 <= loose.p_within_bound < 0.95
    assert tight.settings["map"]["tasks"] == 2 and tight.p_within_bound >= 0.95
    assert tight.total_j.median > loose.total_j.median


def test_an_impossible_bound_names_the_best_achievable_time(synth):
    models, _ = _slow_is_frugal(synth)
    with pytest.raises(ModelError, match=r"no candidate plan finishes within 0.5 s with 95% "
                       r"confidence; the best achievable at that confidence is [\d.]+ s "
                       r"\(map: tasks=32 num_cpus=1\)"):
        optimise(models, 1.0, candidates={"map": GRID}, max_seconds=0.5)


def test_time_only_models_minimise_time_and_say_so(synth):
    models = {"map": fit_stage(synth.make(energy=False))}
    plan = optimise(models, 1.0, candidates={"map": GRID})
    assert plan.objective == "time" and plan.total_j is None
    assert plan.settings["map"]["tasks"] == 32
    assert "time-only" in plan.warnings[0] and "minimises time" in plan.warnings[0]
    assert plan.to_dict()["stages"]["map"]["total_j"] is None


def test_default_grid_stays_in_the_profiled_range(synth):
    plan = optimise({"map": fit_stage(synth.make(tasks=(1, 3, 6, 12, 24)))}, 1.0)
    assert 1 <= plan.settings["map"]["tasks"] <= 24 and plan.warnings == []


def test_bad_arguments_are_config_errors(synth):
    models = {"map": fit_stage(synth.make())}
    with pytest.raises(ConfigError, match="confidence"):
        optimise(models, 1.0, confidence=1.5)
    with pytest.raises(ConfigError, match="max_seconds"):
        optimise(models, 1.0, max_seconds=0)
    with pytest.raises(ConfigError, match="bad candidate"):
        optimise(models, 1.0, candidates={"map": {"tasks": [0, 2]}})
    with pytest.raises(ConfigError, match="unknown stage\\(s\\) reduce"):
        optimise(models, 1.0, candidates={"reduce": GRID})
    with pytest.raises(ConfigError, match="size must be a number > 0"):
        optimise(models, 0)
    with pytest.raises(ConfigError, match="at most 1024 per stage"):
        optimise(models, 1.0, candidates={"map": {"tasks": list(range(1, 1100))}})
