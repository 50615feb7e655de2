"""The tuner end to end on the native framework (fast), plus bad input through the CLI."""

import json
import subprocess
import sys

import optuna
import pytest

from rayjoule.cli import tune

SMALL = ["--workload", "pi", "--size", "200000", "--frameworks", "native", "--meter", "tdp",
         "--idle-seconds", "0", "--tasks", "1:8", "--concurrency", "1:2"]


def tune_cli(tmp_path, *extra):
    out = tmp_path / f"tune{len(list(tmp_path.glob('tune*.json')))}.json"
    code = tune.main([*SMALL, "--db", str(tmp_path / "r.sqlite"), "--json", str(out), *extra])
    return code, json.loads(out.read_text())


def test_resume_accumulates_trials_and_best_is_the_minimum(tmp_path):
    code, first = tune_cli(tmp_path, "--trials", "3")
    assert code == 0 and len(first["trials"]) == 3
    code, second = tune_cli(tmp_path, "--trials", "2")
    assert second["study_name"] == first["study_name"]
    assert [t["number"] for t in second["trials"]] == [0, 1, 2, 3, 4]
    done = [t for t in second["trials"] if t["state"] == "COMPLETE"]
    assert second["best"]["total_j"] == min(t["total_j"] for t in done)
    assert second["meter"] == {"name": "tdp", "kind": "modelled"}
    study = optuna.load_study(study_name=second["study_name"], storage=second["storage"])
    attrs = study.trials[0].user_attrs
    assert {"total_j", "static_j", "dynamic_j", "wall_s", "meter", "kind", "run_id"} <= set(attrs)
    from rayjoule.runs.store import Store

    with Store(tmp_path / "r.sqlite") as s:
        rows = s.runs(study=second["study_name"])
    assert len(rows) == 5 and {r["trial"] for r in rows} == set(range(5))


def test_unreachable_time_limit_gives_no_feasible_best(tmp_path):
    code, out = tune_cli(tmp_path, "--trials", "2", "--max-seconds", "1e-9")
    assert code == 0
    assert out["best"] is None
    assert all(not t["feasible"] for t in out["trials"])


def test_energy_time_objective_gives_a_pareto_front(tmp_path):
    code, out = tune_cli(tmp_path, "--trials", "4", "--objective", "energy,time",
                         "--plot", str(tmp_path / "plots"))
    assert code == 0 and out["objective"] == "energy,time"
    assert out["pareto"]
    done = [t for t in out["trials"] if t["state"] == "COMPLETE"]
    for p in out["pareto"]:  # nothing on the front is dominated
        assert not any(t["total_j"] < p["total_j"] and t["wall_s"] < p["wall_s"] for t in done)
    assert {f.name for f in (tmp_path / "plots").iterdir()} == {
        "energy_vs_parallelism.png", "optimisation_history.png", "pareto_front.png"}


def test_fixed_and_bounded_parameters_are_respected(tmp_path):
    code, out = tune_cli(tmp_path, "--trials", "4", "--tasks", "2:4", "--concurrency", "2",
                         "--sampler", "random")
    assert code == 0
    for t in out["trials"]:
        assert 2 <= t["params"]["tasks"] <= 4 and t["params"]["concurrency"] == 2


def test_grid_sampler_covers_the_grid(tmp_path):
    code, out = tune_cli(tmp_path, "--trials", "10", "--tasks", "1:4", "--concurrency", "1",
                         "--sampler", "grid")
    assert code == 0
    assert sorted(t["params"]["tasks"] for t in out["trials"]) == [1, 2, 4]


def test_repeats_use_the_median(tmp_path):
    code, out = tune_cli(tmp_path, "--trials", "2", "--repeats", "3")
    from rayjoule.runs.store import Store

    with Store(tmp_path / "r.sqlite") as s:
        for t in out["trials"]:
            if t["state"] != "COMPLETE":
                continue
            kids = s.runs(parent_id=t["run_id"])
            assert len(kids) == 3
            assert t["total_j"] == sorted(k["total_j"] for k in kids)[1]


@pytest.mark.parametrize("args, message", [
    (["--workload", "nope"], "unknown workload"),
    (["--sampler", "annealing"], "unknown sampler"),
    (["--objective", "joules"], "--objective"),
    (["--tasks", "8:2"], "inverted"),
    (["--tasks", ""], "expects"),
    (["--concurrency", "0"], "> 0"),
    (["--frameworks", "ray", "--address", "127.0.0.1:1"], "cannot reach"),
    (["--trials", "0"], "--trials"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "rayjoule.tune", "--db",
                           str(tmp_path / "r.sqlite"), "--meter", "tdp", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
