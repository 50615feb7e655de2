"""profile → predict → tune --sampler model, end to end on the native framework (tiny sizes).

Energy comes from the tdp model (``--meter tdp --idle-seconds 0``); nothing here depends on
how fast the machine is — only on what is stored, printed and written.
"""

from __future__ import annotations

import json
import logging

import optuna
import pytest

from rayjoule.cli import predict, profile, tune
from rayjoule.cli.common import run_command
from rayjoule.core.config import RunConfig
from rayjoule.modelling import design, parse_flexecutor, profiles_from_store, task_counts
from rayjoule.runs.session import run
from rayjoule.runs.store import Store

METER = ["--meter", "tdp", "--idle-seconds", "0"]
PI = ["--workload", "pi", "--size", "400000", "--concurrency", "2", *METER]

FLEX = {
    f"(1, 1024, {w})": {"read": [[0.5] * w], "compute": [[8.0 / w + 0.1 * w] * w],
                        "write": [[0.5] * w], "cold_start": [[1.0] * w]}
    for w in (1, 2, 4, 8, 16)
} | {"(2, 2048, 4)": {"read": [[0.5] * 4], "compute": [[1.2] * 4], "write": [[0.5] * 4],
                      "cold_start": [[1.1] * 4]}}


def _rows(db) -> list[dict]:
    with Store(db) as s:
        return s.runs()


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """One profiled store of pi (4 grid settings × 2 + 2 anchors), shared by the predict
    tests."""
    tmp = tmp_path_factory.mktemp("profiled")
    db, out = tmp / "r.sqlite", tmp / "profile.json"
    assert profile.main([*PI, "--db", str(db), "--json", str(out)]) == 0
    return db, json.loads(out.read_text())


def test_profile_stores_tagged_runs_and_prints_the_plan_then_the_energy(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    assert profile.main([*PI, "--db", str(db), "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    plan_at = out.index("4 grid settings × 2 repeats + 2 anchors × 1 = 10 runs")
    spent_at = out.index("spent")
    assert plan_at < spent_at  # what will run is printed before what it cost
    assert "[meter tdp, modelled]" in out[spent_at:]
    with Store(db) as s:
        records = s.records()
        assert records and all(r.config["profile"] is True for r in records)
        assert all(r.status == "ok" for r in records)
        profiles = profiles_from_store(s, "pi")
    # 10 runs, each read once although a repeated one is stored both alone and inside its
    # combined run: every task count twice at ⅛ of the size, the two ends once at ½
    assert len(profiles) == 10
    assert sorted((p.tasks, p.size) for p in profiles if p.size == 200_000.0) == [
        (1, 200_000.0), (8, 200_000.0)]
    assert sorted(p.tasks for p in profiles if p.size == 50_000.0) == [1, 1, 2, 2, 4, 4, 8, 8]
    assert all(p.total_j > 0 and p.energy_kind == "modelled" for p in profiles)


def test_profile_json_counts_the_runs_and_their_joules(profiled):
    _, out = profiled
    assert out["design"]["runs"] == 10 and out["design"]["sizes"] == [50_000, 200_000]
    assert out["design"]["repeats"] == 2 and out["design"]["anchor_repeats"] == 1
    assert [p["role"] for p in out["design"]["points"]] == ["grid"] * 4 + ["anchor"] * 2
    assert out["spent"]["meter"] == {"name": "tdp", "kind": "modelled"}
    assert out["spent"]["total_j"] > 0 and len(out["spent"]["runs"]) == 6


def test_a_design_that_cannot_fit_is_refused_before_any_run(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    code = run_command(profile.main, [*PI, "--db", str(db), "--sizes", "1e5,1e5"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "two distinct input sizes" in err
    code = run_command(profile.main, [*PI, "--db", str(db), "--task-counts", "1,2,4"])
    assert code == 2 and "at least 4 task counts" in capsys.readouterr().err
    code = run_command(profile.main, [*PI, "--db", str(db), "--anchor-repeats", "0"])
    assert code == 2 and "--anchor-repeats must be an integer >= 1" in capsys.readouterr().err
    assert not db.exists() or _rows(db) == []


def test_design_covers_every_varied_stage_of_a_pipeline():
    d = design(RunConfig(workload="wordcount", size=400_000, concurrency=2, meter="tdp"))
    assert d.varied == ("map", "reduce") and set(d.fixed) == {"top"}
    small, large = d.sizes
    for stage in d.varied:
        # every task count at the smallest size, the two ends at the larger one
        assert {p.tasks[stage] for p in d.points if p.size == small} == {1, 2, 4, 8}
        assert {p.tasks[stage] for p in d.points if p.size == large} == {1, 8}
    # reduce reads map through a shuffle: its settings count the fan-in (map's tasks) too
    assert d.reads == {"reduce": ("map",)}
    assert d.n_settings_by_stage() == {"map": 6, "reduce": 6}
    assert d.n_runs == 4 * 2 + 2
    # the rotation keeps the stages' settings from moving together, anchors included
    assert all(p.tasks["map"] != p.tasks["reduce"] for p in d.points)
    # each larger size gets its own anchors; the grid stays at the smallest
    three = design(RunConfig(workload="pi", size=400_000, concurrency=2, meter="tdp"),
                   sizes=[100_000, 25_000, 400_000], repeats=3, anchor_repeats=2)
    assert three.sizes == (25_000, 100_000, 400_000)
    assert [(p.size, p.tasks["map"], p.role, three.repeats_of(p)) for p in three.points] == [
        (25_000, 1, "grid", 3), (25_000, 2, "grid", 3), (25_000, 4, "grid", 3),
        (25_000, 8, "grid", 3), (100_000, 1, "anchor", 2), (100_000, 8, "anchor", 2),
        (400_000, 1, "anchor", 2), (400_000, 8, "anchor", 2)]
    assert [c.repeats for c in three.configs(RunConfig(workload="pi", size=400_000,
                                                       meter="tdp"))] == [3] * 4 + [2] * 4
    ray = design(RunConfig(workload="pi", size=400_000, concurrency=2, framework="ray",
                           meter="tdp"))
    assert {p.num_cpus.get("map", 1.0) for p in ray.points} == {0.5, 1.0, 2.0}
    # the CPU points belong to the grid (smallest size); the anchors run at 1 CPU
    assert {p.size for p in ray.points if p.num_cpus} == {ray.sizes[0]}
    assert ray.n_runs == 6 * 2 + 2 and ray.n_settings_by_stage() == {"map": 8}
    assert task_counts(2) == [1, 2, 4, 8]
    # 0.5-CPU tasks run at the concurrency that packs the 2-CPU budget with them (4 at once);
    # at concurrency 2 Ray's placement group would hold them to 2, like 1-CPU tasks
    for p, config in zip(ray.points, ray.configs(RunConfig(workload="pi", size=400_000,
                                                           concurrency=2, framework="ray",
                                                           meter="tdp")), strict=True):
        half = p.num_cpus.get("map") == 0.5
        assert config.concurrency == (min(p.tasks["map"], 4) if half else 2), p


def test_predict_prints_and_writes_the_stable_keys(profiled, tmp_path, capsys):
    db, _ = profiled
    out = tmp_path / "p.json"
    assert predict.main(["--workload", "pi", "--size", "400000", "--db", str(db),
                         "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "held-out error" in text and "[predicted from profiles metered by tdp, modelled]" \
        in text
    assert "extrapolates" in text  # 4e5 lies beyond the profiled 5e4..2e5
    data = json.loads(out.read_text())
    assert data["mode"] == "optimise" and data["meter"] == {"name": "tdp", "kind": "modelled"}
    (plan,) = data["predictions"]
    assert plan["objective"] == "energy"
    assert set(plan["settings"]) == {"map"} and plan["settings"]["map"]["tasks"] in (1, 2, 4, 8)
    for key in ("wall_s", "total_j"):
        assert set(plan[key]) == {"median", "ci95"}
        lo, hi = plan[key]["ci95"]
        assert lo <= plan[key]["median"] <= hi
    err = plan["held_out_error"]["map"]
    assert err["method"] == "leave-one-setting-out" and err["wall_s_mape_pct"] >= 0
    assert any("size=400000 is outside the profiled range" in w for w in plan["warnings"])


def test_predict_at_given_settings(profiled, tmp_path):
    db, _ = profiled
    out = tmp_path / "p.json"
    assert predict.main(["--workload", "pi", "--size", "100000", "--db", str(db), "--json",
                         str(out), "--at", "tasks=2", "--at", "map.tasks=8,num_cpus=1"]) == 0
    data = json.loads(out.read_text())
    assert data["mode"] == "at"
    assert [p["settings"]["map"]["tasks"] for p in data["predictions"]] == [2, 8]
    assert all(p["total_j"]["median"] > 0 for p in data["predictions"])
    assert not any("extrapolates" in w for p in data["predictions"] for w in p["warnings"])


@pytest.mark.parametrize("extra, message", [
    (["--at", "reduce.tasks=2"], "unknown stage 'reduce' (profiled stages: map)"),
    (["--at", "tasks=two"], "--at: tasks must be a number"),
    (["--at", "num_cpus=2"], "gives no tasks for stage 'map'"),
    (["--at", "tasks=2", "--max-seconds", "3"], "give one or the other"),
    (["--size", "-1"], "--size must be > 0"),
])
def test_predict_bad_settings_are_one_line(profiled, capsys, extra, message):
    db, _ = profiled
    code = run_command(predict.main, ["--workload", "pi", "--size", "1e5", "--db", str(db),
                                      *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_predict_with_too_few_profiles_says_how_many_more(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    for tasks in (1, 2, 4):
        run(RunConfig(workload="pi", size=100_000, tasks=tasks, meter="tdp", idle_seconds=0,
                      profile=True), db=db)
    code = run_command(predict.main, ["--workload", "pi", "--size", "1e5", "--db", str(db)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "3 distinct settings" in err and "2 more" in err
    code = run_command(predict.main, ["--workload", "mandelbrot", "--db", str(db)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no profiling runs of 'mandelbrot'" in err
    code = run_command(predict.main, ["--workload", "pi", "--db", str(tmp_path / "none.db")])
    assert code == 2 and "not found" in capsys.readouterr().err


def test_flexecutor_import_round_trips_as_time_only_profiles(tmp_path, capsys):
    db, src = tmp_path / "r.sqlite", tmp_path / "map.json"
    src.write_text(json.dumps(FLEX))
    assert profile.main(["--import-flexecutor", str(src), "--workload", "wc-flex", "--stage",
                         "map", "--db", str(db)]) == 0
    assert "time only" in capsys.readouterr().out
    with Store(db) as s:
        stored = profiles_from_store(s, "wc-flex")
    parsed = parse_flexecutor(FLEX, "wc-flex", "map")

    def key(p):
        return (p.stage, p.tasks, p.num_cpus, p.memory_mb, p.size, p.wall_s, p.cold_start_s,
                p.total_j, p.source, p.energy_kind)

    assert sorted(map(key, stored)) == sorted(map(key, parsed))
    out = tmp_path / "p.json"
    assert predict.main(["--workload", "wc-flex", "--db", str(db), "--json", str(out)]) == 0
    (plan,) = json.loads(out.read_text())["predictions"]
    assert plan["objective"] == "time" and plan["total_j"] is None
    assert set(plan["wall_s"]) == {"median", "ci95"}


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not JSON"),
    (json.dumps({"(1, 1024)": {}}), "is not '(cpu, memory, workers)'"),
    (json.dumps({"(1, 1024, 2)": {"read": [[1.0, 1.0]]}}), "missing field(s)"),
])
def test_a_bad_flexecutor_file_is_one_line_and_stores_nothing(tmp_path, capsys, content,
                                                               message):
    db, src = tmp_path / "r.sqlite", tmp_path / "bad.json"
    good = tmp_path / "good.json"
    good.write_text(json.dumps(FLEX))
    assert profile.main(["--import-flexecutor", str(good), "--workload", "w", "--stage", "s",
                         "--db", str(db)]) == 0
    before = _rows(db)
    src.write_text(content)
    capsys.readouterr()
    code = run_command(profile.main, ["--import-flexecutor", str(src), "--workload", "w",
                                      "--stage", "s", "--db", str(db)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err
    assert _rows(db) == before


def test_tune_with_the_model_sampler_profiles_then_enqueues_the_plan(tmp_path, capsys):
    db, out = tmp_path / "r.sqlite", tmp_path / "t.json"
    code = tune.main(["--workload", "pi", "--size", "400000", "--frameworks", "native",
                      *METER, "--tasks", "1:16", "--concurrency", "1:2", "--trials", "3",
                      "--sampler", "model", "--db", str(db), "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "profiling first" in text and "predicted optimum" in text
    with Store(db) as s:
        assert len(profiles_from_store(s, "pi", "native")) == 10
    report = json.loads(out.read_text())
    study = optuna.load_study(study_name=report["study_name"], storage=report["storage"])
    first = study.trials[0]
    assert first.system_attrs["fixed_params"] == first.params
    assert first.user_attrs["seeded_by"] == "model (first fit)"
    # the first trial is the optimiser's plan, within the search space
    plan_out = tmp_path / "plan.json"
    assert predict.main(["--workload", "pi", "--size", "400000", "--db", str(db),
                         "--json", str(plan_out)]) == 0
    plan = json.loads(plan_out.read_text())["predictions"][0]
    assert first.params["tasks"] == plan["settings"]["map"]["tasks"]
    assert first.params["concurrency"] == 2
    assert all("fixed_params" in t.system_attrs for t in study.trials[:3])


def test_tune_seeds_a_pipeline_per_stage(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="rayjoule")
    db, out = tmp_path / "r.sqlite", tmp_path / "t.json"
    code = tune.main(["--workload", "wordcount", "--size", "200000", "--frameworks", "native",
                      *METER, "--tasks", "map=1:8,reduce=1:8", "--concurrency", "2",
                      "--trials", "3", "--sampler", "model", "--db", str(db), "--json",
                      str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    study = optuna.load_study(study_name=report["study_name"], storage=report["storage"])
    fixed = study.trials[0].system_attrs["fixed_params"]
    assert set(fixed) == {"tasks.map", "tasks.reduce"}  # top is capped, concurrency fixed
    assert all(1 <= v <= 8 for v in fixed.values())
    # the refit after the third trial learns from the trials: reduce's profiles from trials
    # carry map's task count (its fan-in through the shuffle) like its profiling runs do, so
    # the refit runs and succeeds with both modelled stages of all three trials
    messages = [r.getMessage() for r in caplog.records]
    assert "model refitted after trial 2 with 6 trial profiles" in messages, caplog.text
    assert not [m for m in messages if "refit" in m and "failed" in m], caplog.text


# -- the modelling fixes this command relies on ------------------------------------------------
def _law_profiles(cpus=(1.0,), extra=(), sizes=(1.0, 2.0)):
    from rayjoule.modelling import Profile

    def t(x, s):  # work spread over x = tasks/cpus, plus a fixed second
        return s * 8.0 / x + 1.0

    out = []
    for k in cpus:
        for tasks in (1, 2, 4, 8):
            for s in sizes:
                for r in range(2):
                    wall = t(tasks / k, s) * (1 + 0.01 * (-1) ** r)
                    out.append(Profile("w", "map", tasks, k, None, s, wall, 10 * wall + 5 * s))
    for tasks, k in extra:
        for s in sizes:
            wall = t(tasks / k, s)
            out.append(Profile("w", "map", tasks, k, None, s, wall, 10 * wall + 5 * s))
    return out


def test_unprofiled_parallelism_warns_and_the_optimiser_avoids_it():
    from rayjoule.modelling import default_grid, fit_stage, optimise

    model = fit_stage(_law_profiles(extra=[(4, 0.5), (2, 2.0)]))
    assert model.time_form == "tasks/num_cpus" and model.parallelism_range == (1.0, 8.0)
    warnings = model.extrapolates({"tasks": 8, "num_cpus": 0.5}, 1.5)
    assert len(warnings) == 1 and "effective parallelism" in warnings[0]
    assert model.extrapolates({"tasks": 4, "num_cpus": 0.5}, 1.5) == []
    assert default_grid(model)["num_cpus"] == [0.5, 1.0, 2.0]
    plan = optimise({"map": model}, 1.5)
    s = plan.settings["map"]
    assert s["tasks"] / s["num_cpus"] <= 8
    # asked explicitly, an unprofiled combination is still predicted, with its warning
    only = optimise({"map": model}, 1.5, candidates={"map": {"tasks": [8], "num_cpus": [0.5]}})
    assert any("effective parallelism" in w for w in only.warnings)


def test_profiles_are_read_per_framework_and_parameters(profiled):
    db, _ = profiled
    with Store(db) as s:
        assert len(profiles_from_store(s, "pi", framework="native")) == 10
        assert {p.concurrency for p in profiles_from_store(s, "pi")} == {2}
        assert profiles_from_store(s, "pi", framework="ray") == []
        params = RunConfig(workload="pi", size=1000).validated().params
        assert len(profiles_from_store(s, "pi", params=params)) == 10
        assert profiles_from_store(s, "pi", params={**params, "kernel": "python"}) == []
