"""A pipeline's model: varied stages fitted, a one-setting stage fixed and added to the totals."""

from __future__ import annotations

import pytest

from rayjoule.modelling import ModelError, Profile, fit_pipeline, optimise


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
