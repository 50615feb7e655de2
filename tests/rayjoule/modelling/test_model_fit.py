"""Fitting: the law comes back within its intervals, errors are reported, limits are said."""

from __future__ import annotations

import dataclasses

import pytest

from rayjoule.core.errors import ConfigError
from rayjoule.modelling import ModelError, fit_pipeline, fit_stage


def test_fit_recovers_the_law_within_its_intervals(synth):
    model = fit_stage(synth.make())
    params = model.params()
    assert params["time_form"] == "tasks"
    for group in ("time", "energy"):
        for name, p in params[group].items():
            lo, hi = p["ci95"]
            assert lo <= synth.law[name] <= hi, (name, p)
    assert 0.01 < params["wall_s_noise_rel"] < 0.06


def test_predictions_cover_the_law_and_say_their_held_out_error(synth):
    model = fit_stage(synth.make())
    pred = model.predict({"tasks": 8, "num_cpus": 1.0}, size=1.5)
    t = synth.time(8, 1.0, 1.5)
    assert pred.wall_s.low <= t <= pred.wall_s.high
    assert pred.total_j.low <= synth.energy(8, t, 1.5) <= pred.total_j.high
    assert pred.warnings == []
    err = pred.to_dict()["held_out_error"]
    assert err["method"] == "leave-one-setting-out" and err["settings"] == 12
    assert 0 < err["wall_s_mape_pct"] < 10 and 0 < err["total_j_mape_pct"] < 10


def test_prediction_to_dict_has_stable_keys(synth):
    d = fit_stage(synth.make()).predict({"tasks": 4}, size=1.0).to_dict()
    assert set(d) == {"stage", "settings", "size", "exec_s", "cold_start_s", "wall_s",
                      "total_j", "held_out_error", "warnings"}
    assert d["settings"] == {"tasks": 4, "num_cpus": 1.0}
    assert set(d["wall_s"]) == {"median", "ci95"} and len(d["total_j"]["ci95"]) == 2
    # rayjoule's own profiles keep no cold starts apart: wall time is the exec time
    assert d["cold_start_s"] is None and d["wall_s"] == d["exec_s"]
    assert d["held_out_error"]["quantity"] == "exec_s"


def test_a_noisier_law_gives_wider_intervals(synth):
    def width(noise):
        w = fit_stage(synth.make(noise=noise)).predict({"tasks": 4}, 1.0).wall_s
        return w.high - w.low

    assert width(0.10) > 2 * width(0.02)


def test_extrapolation_warns_per_setting(synth):
    model = fit_stage(synth.make())
    assert model.profiled_range == {"tasks": [1, 32], "num_cpus": [1, 1], "size": [1, 2]}
    warnings = model.predict({"tasks": 64, "num_cpus": 2.0}, size=4.0).warnings
    assert len(warnings) == 3
    assert "tasks=64 is outside the profiled range 1..32" in warnings[0]
    assert all("extrapolates" in w for w in warnings)
    assert model.extrapolates({"tasks": 32}, 2.0) == []


def test_too_few_settings_says_how_many_more(synth):
    with pytest.raises(ModelError, match=r"stage 'map' has 3 distinct settings; the time "
                       r"model needs at least 5 \(2 more\)"):
        fit_stage(synth.make(tasks=(1, 2, 4), sizes=(1.0,)))
    assert issubclass(ModelError, ConfigError)


def test_too_few_settings_with_energy_is_named(synth):
    profiles = synth.make(sizes=(1.0,))
    timed_only = [dataclasses.replace(p, total_j=None) if p.tasks > 4 else p for p in profiles]
    with pytest.raises(ModelError, match=r"has 3 distinct settings; the energy model needs "
                       r"at least 4 \(1 more\)"):
        fit_stage(timed_only)


def test_settings_that_only_vary_size_cannot_fit_the_time_model(synth):
    with pytest.raises(ModelError, match="only 1 value"):
        fit_stage(synth.make(tasks=(4,), sizes=(1.0, 2.0, 3.0, 4.0, 5.0)))


def test_time_only_profiles_fit_a_time_only_model(synth):
    model = fit_stage(synth.make(energy=False))
    assert model.time_only
    pred = model.predict({"tasks": 4}, 1.0)
    assert pred.total_j is None and pred.to_dict()["total_j"] is None
    assert pred.held_out_error["total_j_mape_pct"] is None


def test_cpus_that_speed_tasks_pick_the_tasks_times_cpus_form(synth):
    profiles = synth.make(tasks=(1, 2, 4, 8), cpus=(0.5, 1.0, 2.0), sizes=(1.0,),
                          form="tasks*num_cpus")
    assert fit_stage(profiles).time_form == "tasks*num_cpus"


def test_fit_pipeline_splits_by_stage_in_order(synth):
    model = fit_pipeline(synth.make(stage="split") + synth.make(stage="join", seed=2))
    assert list(model.models) == ["split", "join"] and model.order == ("split", "join")
    assert model.fixed == {}
    with pytest.raises(ModelError, match="several stages"):
        fit_stage(synth.make(stage="split") + synth.make(stage="join"))
    with pytest.raises(ModelError, match="no profiles"):
        fit_stage([])


def test_bad_settings_are_config_errors(synth):
    model = fit_stage(synth.make())
    with pytest.raises(ConfigError, match="tasks"):
        model.predict({"tasks": 0}, 1.0)
    with pytest.raises(ConfigError, match="num_cpus"):
        model.predict({"tasks": 2, "num_cpus": -1}, 1.0)


def test_held_out_fits_that_lose_a_parallelism_are_unique_whatever_the_size_unit():
    """Leaving out the only setting at some x leaves the time law with three distinct
    parallelisms for four parameters: without regularisation the solver returned any point
    of the flat valley, and the held-out error swung with the size's unit (1e14 % at
    size 3072, 12 % at size 1, on these six runs of mandelbrot on Ray, one per setting)."""
    from rayjoule.modelling import Profile

    runs = [(1, 1.0, 0.6598, 3.6012), (2, 1.0, 0.3564, 2.5022), (4, 1.0, 0.3978, 2.6884),
            (8, 1.0, 0.4048, 2.6710), (4, 0.5, 0.3640, 2.5274), (2, 2.0, 0.6370, 2.8207)]

    def fit(size: float):
        return fit_stage([Profile("w", "map", t, c, None, size, wall, j)
                          for t, c, wall, j in runs])

    small, large = fit(1.0), fit(3072.0)
    assert small.time_form == large.time_form == "tasks/num_cpus"
    for key in ("wall_s_mape_pct", "total_j_mape_pct"):
        a, b = small.held_out_error[key], large.held_out_error[key]
        assert a == pytest.approx(b, rel=1e-6) and a < 50, (key, a, b)


def _cpu_design(law, form, noise, seed):
    """The profiling design's points: four task counts at 1 CPU over two sizes, and the
    two CPU points (4 × 0.5, 2 × 2) at the smaller size."""
    from tests.rayjoule.modelling.conftest import make

    kw = {"law": law, "form": form, "noise": noise}
    return (make(tasks=(1, 2, 4, 8), sizes=(1.0, 4.0), seed=seed, **kw)
            + make(tasks=(4,), cpus=(0.5,), sizes=(1.0,), seed=100 + seed, **kw)
            + make(tasks=(2,), cpus=(2.0,), sizes=(1.0,), seed=200 + seed, **kw))


def test_the_form_where_cpus_matter_must_beat_tasks_by_more_than_one_standard_error(synth):
    """A law where CPUs per task do not matter and time flattens with x (like a saturated
    pool): at 20 % noise the least held-out error alone picks a CPU form in 14 of 40 draws
    (which lets the optimiser choose CPUs per task on noise); the one-standard-error rule
    keeps ``tasks`` in at least 34. Where CPUs clearly matter (the ``tasks·num_cpus`` law
    at 10 % noise) it still finds that form every time."""
    from rayjoule.modelling import forms
    from rayjoule.modelling.fit_data import StageData

    flat = {**synth.law, "a": 2.0, "b": 0.0, "c": 0.0, "d": 2.0}
    picks = {"rule": [], "least error": []}
    for seed in range(40):
        ps = _cpu_design(flat, "tasks", 0.2, seed)
        picks["rule"].append(fit_stage(ps).time_form)
        scores = {f: StageData(ps).held_out(f, True) for f in forms.TIME_FORMS}
        picks["least error"].append(min(scores, key=lambda f: scores[f][0]))
    assert picks["rule"].count("tasks") >= 34, picks
    assert picks["least error"].count("tasks") <= 30, picks
    for seed in range(10):
        assert fit_stage(_cpu_design(synth.law, "tasks*num_cpus", 0.1, seed)).time_form == \
            "tasks*num_cpus"
