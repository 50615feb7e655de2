"""A pipeline's model: varied stages fitted, a one-setting stage fixed and added to the totals."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from rayjoule.modelling import FixedStage, ModelError, Profile, fit_pipeline, optimise


def _fixed(sizes=(1.0, 2.0), repeats=2) -> list[Profile]:
    """A ``max_tasks=1`` aggregate: one setting, time and joules linear in size."""
    return [Profile("synthetic", "top", 1, 1.0, None, s, 0.5 + 0.25 * s + 0.01 * r,
                    5.0 + 2.0 * s + 0.1 * r, run_id=f"top-{s}-{r}")
            for s in sizes for r in range(repeats)]


def test_a_stage_profiled_at_one_setting_is_fixed_and_keeps_its_place(synth):
    model = fit_pipeline(synth.make(stage="map") + _fixed())
    assert list(model.models) == ["map"] and list(model.fixed) == ["top"]
    assert model.order == ("map", "top")
    est = model.fixed["top"].estimate(1.5)
    assert est.settings == {"tasks": 1, "num_cpus": 1.0}
    assert est.wall_s.low <= est.wall_s.median <= est.wall_s.high
    assert est.wall_s.median == pytest.approx(0.5 + 0.25 * 1.5 + 0.005)
    assert est.warnings == ()
    assert "extrapolates" in model.fixed["top"].estimate(4.0).warnings[0]


def test_the_plan_adds_the_fixed_stage_to_the_optimised_totals(synth):
    model = fit_pipeline(synth.make(stage="map") + _fixed())
    alone = optimise(model.models, 1.5)
    plan = model.plan(1.5)
    top = model.fixed["top"].estimate(1.5)
    assert list(plan.settings) == ["map", "top"]
    assert plan.settings["map"] == alone.settings["map"]
    assert plan.settings["top"] == {"tasks": 1, "num_cpus": 1.0}
    assert plan.wall_s.median == pytest.approx(alone.wall_s.median + top.wall_s.median)
    assert plan.total_j.high == pytest.approx(alone.total_j.high + top.total_j.high)
    assert any("totals include the fixed stage(s) top" in w for w in plan.warnings)
    data = plan.to_dict()
    assert data["fixed_stages"]["top"]["settings"] == {"tasks": 1, "num_cpus": 1.0}
    assert set(data["stages"]) == {"map"} and set(data["held_out_error"]) == {"map"}


def test_asking_a_fixed_stage_for_another_setting_warns(synth):
    model = fit_pipeline(synth.make(stage="map") + _fixed())
    plan = model.plan(1.5, settings={"map": {"tasks": 4, "num_cpus": 1.0},
                                     "top": {"tasks": 2, "num_cpus": 1.0}})
    assert plan.settings["map"]["tasks"] == 4 and plan.settings["top"]["tasks"] == 1
    assert any("'top' is fixed" in w for w in plan.warnings)


def test_a_bound_the_fixed_stages_alone_exceed_is_a_model_error(synth):
    model = fit_pipeline(synth.make(stage="map") + _fixed())
    with pytest.raises(ModelError, match="fixed stage"):
        model.plan(1.5, max_seconds=0.5)


def test_nothing_to_fit_says_so(synth):
    with pytest.raises(ModelError, match="no profiles"):
        fit_pipeline([])
    with pytest.raises(ModelError, match="distinct settings"):
        fit_pipeline(_fixed())  # nothing varies: the fit says how many settings it needs


def _merge(per_upstream_s: float, ups=(1, 2, 4, 8, 16), sizes=(1.0, 2.0), repeats=2, noise=0.02,
           seed=3) -> list[Profile]:
    """A one-task merge after ``map``: ``0.2 + 0.1·s + per_upstream_s·u`` seconds (u = the
    map's tasks in that run), 10 W while it runs."""
    rng = np.random.default_rng(seed)
    out = []
    for u in ups:
        for s in sizes:
            for r in range(repeats):
                t = (0.2 + 0.1 * s + per_upstream_s * u) * (1 + noise * rng.standard_normal())
                out.append(Profile("synthetic", "top", 1, 1.0, None, s, t, 10.0 * t,
                                   run_id=f"top-{u}-{s}-{r}", upstream_tasks=u,
                                   upstream_stages=("map",)))
    return out


def test_a_merge_that_grows_with_the_upstream_tasks_is_charged_to_them(synth):
    model = fit_pipeline(synth.make(stage="map") + _merge(0.25))
    top = model.fixed["top"]
    assert top.grows_with_upstream and top.upstream_stages == ("map",)
    assert top.wall.per_upstream_task == pytest.approx(0.25, rel=0.1)
    assert top.energy.per_upstream_task == pytest.approx(2.5, rel=0.1)
    assert top.held_out_error["with_upstream_mape_pct"] < top.held_out_error["size_only_mape_pct"]
    alone = optimise(model.models, 1.5).settings["map"]
    plan = model.plan(1.5)
    chosen = plan.settings["map"]["tasks"]
    assert chosen < alone["tasks"]  # each map task now costs the merge 0.25 s, 2.5 J
    merge = plan.fixed_stages["top"]
    assert merge.upstream_tasks == chosen
    assert merge.wall_s.median == pytest.approx(top.wall.at(1.5, chosen).median)
    # the plan at the map's own optimum costs more in total, merge included
    other = model.plan(1.5, settings={"map": alone, "top": {"tasks": 1, "num_cpus": 1.0}})
    assert other.fixed_stages["top"].upstream_tasks == alone["tasks"]
    assert plan.total_j.median < other.total_j.median
    assert plan.to_dict()["fixed_stages"]["top"]["upstream_tasks"] == chosen
    assert "per_upstream_task" in model.fixed["top"].to_dict()["wall_s"]


def test_a_merge_that_does_not_grow_with_them_keeps_the_law_in_size(synth):
    model = fit_pipeline(synth.make(stage="map") + _merge(0.0))
    top = model.fixed["top"]
    assert not top.grows_with_upstream and top.wall.per_upstream_task is None
    assert top.held_out_error is not None  # it was tried, and lost
    plan = model.plan(1.5)
    assert plan.settings["map"] == optimise(model.models, 1.5).settings["map"]
    assert plan.fixed_stages["top"].upstream_tasks is None



def test_a_merge_profiled_at_one_size_still_has_an_interval():
    top = FixedStage.fit(_merge(0.25, sizes=(1.0,), repeats=3))
    assert top.grows_with_upstream and top.wall.slope == 0.0
    assert top.wall.per_upstream_task == pytest.approx(0.25, rel=0.1)
    est = top.estimate(1.0, 4)
    assert est.wall_s.low < est.wall_s.median < est.wall_s.high  # the noise, not zero width


def test_a_bound_counts_what_the_merge_costs_at_each_upstream_count(synth):
    model = fit_pipeline(synth.make(stage="map") + _merge(0.25))
    with pytest.raises(ModelError, match=r"within 1 s") as refused:
        model.plan(1.5, max_seconds=1.0, confidence=0.5)
    found = re.search(r"best achievable at that confidence is ([\d.]+) s \(map: tasks=(\d+)",
                      str(refused.value))
    fastest_s, tasks = float(found[1]), int(found[2])
    # the fastest plan's time, as said, is the whole plan's: its map and the merge at its count
    at = model.plan(1.5, settings={"map": {"tasks": tasks, "num_cpus": 1.0}})
    assert at.fixed_stages["top"].upstream_tasks == tasks
    assert fastest_s == pytest.approx(at.wall_s.median, rel=0.02)
    bounded = model.plan(1.5, max_seconds=fastest_s * 1.02, confidence=0.5)
    assert bounded.wall_s.median <= fastest_s * 1.02


def test_a_merge_without_joules_is_said_to_be_left_out_of_the_joules(synth):
    merge = [dataclasses.replace(p, total_j=None) for p in _merge(0.25)]
    plan = fit_pipeline(synth.make(stage="map") + merge).plan(1.5)
    assert plan.fixed_stages["top"].total_j is None
    assert any("no joules in their profiles" in w for w in plan.warnings)
