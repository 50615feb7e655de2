"""Tuning a user's own Ray program end to end, on the session's shared 2-CPU Ray instance.

The programs are files in ``tests_support/programs`` loaded as ``file.py:FUNCTION`` (so
their functions reach Ray's workers by value). The modelled ``tdp`` meter and no idle
baseline keep the trials short; nothing here depends on how fast anything runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest

import rayjoule
from rayjoule.cli import tune
from rayjoule.cli.common import run_command
from rayjoule.runs.store import Store

PROGRAMS = Path(__file__).resolve().parents[2] / "tests_support" / "programs"
TINY = PROGRAMS / "tiny_ray.py"
FAST = ["--meter", "tdp", "--idle-seconds", "0"]
FIGURES = {"settings", "total_j", "wall_s", "stages"}
TRIAL_KEYS = {"number", "settings", "total_j", "wall_s", "state"}
TOP_KEYS = {"program", "space", "baseline", "best", "fastest", "saved_j", "saved_pct",
            "trials", "meter"}


def space_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "knobs.toml"
    path.write_text(text)
    return path


def tune_cli(tmp_path: Path, *argv: str) -> tuple[int, dict]:
    out = tmp_path / "tune.json"
    code = run_command(tune.main, [*argv, *FAST, "--db", str(tmp_path / "r.sqlite"),
                                   "--json", str(out)])
    return code, json.loads(out.read_text()) if out.exists() else {}


SQUARES_SPACE = ('[knob.tasks]\nkind = "int"\nlow = 1\nhigh = 4\n\n'
                 '[knob.mode]\nkind = "categorical"\nchoices = ["sum", "neg"]\n')


def test_a_ray_program_is_tuned_defaults_first_then_rerun_side_by_side_and_resumed(
        ray_session, tmp_path):
    space = space_file(tmp_path, SQUARES_SPACE)
    code, out = tune_cli(tmp_path, "--program", f"{TINY}:squares", "--space", str(space),
                         "--trials", "3", "--sampler", "random", "--seed", "3")
    assert code == 0
    assert TOP_KEYS <= set(out)
    assert out["space"] == {"tasks": {"kind": "int", "low": 1, "high": 4},
                            "mode": {"kind": "categorical", "choices": ["sum", "neg"]}}
    first = out["trials"][0]
    assert first["settings"] == {"tasks": 2, "mode": "sum"} and first["state"] == "COMPLETE"
    assert all(TRIAL_KEYS <= set(t) for t in out["trials"]) and len(out["trials"]) == 3
    for side in ("baseline", "best", "fastest"):
        assert FIGURES <= set(out[side])
    assert out["baseline"]["settings"] == first["settings"]
    assert out["baseline"]["stages"] and set(out["baseline"]["stages"]) == {"squares.chunk"}
    assert len(out["baseline"]["rerun_j"]) == len(out["best"]["rerun_j"]) == 3
    # the finalists (the two cheapest settings of the trials) were re-run against the
    # defaults; the best is the one cheapest in that re-run, whatever its trial said
    finalists = out["finalists"]
    assert 1 <= len(finalists) <= 2 and all(len(f["rerun_j"]) == 3 for f in finalists)
    chosen = min(finalists, key=lambda f: f["rerun_median_j"])
    assert out["best"]["settings"] == chosen["settings"]
    assert out["best"]["rerun_j"] == chosen["rerun_j"]
    others = sum(f["settings"] != first["settings"] for f in finalists)
    # fastest against best: from the re-run wherever the fastest setting was re-run
    rerun_j = {json.dumps(f["settings"], sort_keys=True): f["rerun_median_j"]
               for f in finalists}
    rerun_j[json.dumps(out["baseline"]["settings"], sort_keys=True)] = \
        out["baseline"]["total_j"]
    fastest = json.dumps(out["fastest"]["settings"], sort_keys=True)
    if fastest in rerun_j:
        assert out["tradeoff"]["source"] == "side-by-side re-run"
        assert out["tradeoff"]["fastest_extra_j"] == pytest.approx(
            rerun_j[fastest] - out["best"]["total_j"])
        if any(json.dumps(f["settings"], sort_keys=True) == fastest for f in finalists):
            assert out["tradeoff"]["fastest_extra_j"] >= 0  # the re-run's cheapest finalist
    else:
        assert out["tradeoff"]["source"] == "trials"
    for key in ("saved_j", "saved_pct"):
        assert set(out[key]) == {"median", "ci95"}
        low, high = out[key]["ci95"]
        assert low <= out[key]["median"] <= high
    assert out["meter"] == {"name": "tdp", "kind": "modelled"}
    assert set(out["tuner_overhead_s"]) == {"median", "max"}
    with Store(tmp_path / "r.sqlite") as store:
        runs = store.runs(study=out["study_name"])
        trial_runs = [r for r in runs if r["trial"] is not None]
        # 3 trials, then 3 rounds of the defaults and each finalist that is not them
        assert len(runs) == 3 + 3 * (1 + others) and all(r["status"] == "ok" for r in runs)
        assert {r["trial"] for r in trial_runs} == {0, 1, 2}
        tasks = store.tasks(out["trials"][0]["run_id"])
        assert len(tasks) == 2 and {t.stage for t in tasks} == {"squares.chunk"}

    code, again = tune_cli(tmp_path, "--program", f"{TINY}:squares", "--space", str(space),
                           "--trials", "2", "--sampler", "random", "--seed", "3")
    assert code == 0 and again["study_name"] == out["study_name"]
    assert [t["number"] for t in again["trials"]] == [0, 1, 2, 3, 4]
    assert again["trials"][0]["settings"] == first["settings"]  # defaults run once
    study = optuna.load_study(study_name=out["study_name"], storage=out["storage"])
    assert len(study.trials) == 5

    # the Python API, resuming the same study, reports the same fields and figures
    report = rayjoule.tune_program(
        str(TINY) + ":squares", {"tasks": {"kind": "int", "low": 1, "high": 4},
                                 "mode": {"kind": "categorical", "choices": ["sum", "neg"]}},
        trials=1, sampler="random", seed=3, db=tmp_path / "r.sqlite", meter="tdp",
        idle_seconds=0)
    api = json.loads(json.dumps(report.to_dict(), default=str))
    assert set(api) == set(again) and api["study_name"] == again["study_name"]
    assert api["trials"][:5] == again["trials"] and len(api["trials"]) == 6
    assert report.program == api["program"] and report.saved_j == api["saved_j"]


def test_a_raising_trial_is_a_failed_trial_and_the_study_goes_on(ray_session, tmp_path):
    space = space_file(tmp_path, '[knob.tasks]\nkind = "categorical"\nchoices = [2, 5]\n')
    code, out = tune_cli(tmp_path, "--program", f"{TINY}:flaky", "--space", str(space),
                         "--trials", "3", "--sampler", "grid")
    assert code == 0
    by_tasks = {t["settings"]["tasks"]: t for t in out["trials"]}
    failed = by_tasks[5]
    assert failed["state"] == "FAIL" and "too many" in failed["error"]
    assert by_tasks[2]["state"] == "COMPLETE" and out["best"]["settings"] == {"tasks": 2}
    with Store(tmp_path / "r.sqlite") as store:
        statuses = {r["trial"]: r["status"] for r in store.runs(study=out["study_name"])
                    if r["trial"] is not None}
    assert statuses[failed["number"]] == "failed"


def test_a_program_failing_at_its_defaults_stops_the_tune_in_one_line(ray_session, tmp_path,
                                                                      capsys):
    space = space_file(tmp_path, '[knob.tasks]\nkind = "int"\nlow = 1\nhigh = 3\n')
    code, out = tune_cli(tmp_path, "--program", f"{TINY}:broken", "--space", str(space),
                         "--trials", "3")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and out == {}
    assert "fails at its defaults" in err[-1] and "never works" in err[-1]
    with Store(tmp_path / "r.sqlite") as store:
        assert [r["status"] for r in store.runs()] == ["failed"]  # what ran is kept


def test_a_program_that_calls_ray_init_itself_runs_in_a_driver_of_its_own(ray_session,
                                                                          tmp_path):
    space = space_file(tmp_path, '[knob.tasks]\nkind = "int"\nlow = 1\nhigh = 3\n')
    code, out = tune_cli(tmp_path, "--program", f"{TINY}:own_init", "--space", str(space),
                         "--trials", "2", "--sampler", "random", "--seed", "1")
    assert code == 0 and out["driver"] == "process"
    assert all(t["state"] == "COMPLETE" for t in out["trials"])
    # the child's Ray job is attributed: its tasks are the runs' stages
    assert set(out["baseline"]["stages"]) == {"squares.chunk"}
    with Store(tmp_path / "r.sqlite") as store:
        tasks = store.tasks(out["trials"][0]["run_id"])
    assert len(tasks) == 2 and {t.stage for t in tasks} == {"squares.chunk"}


@pytest.mark.timeout(240)
def test_soak_thirty_measured_runs_of_a_ray_data_program_in_one_tune(ray_session, tmp_path):
    space = space_file(tmp_path, '[knob.batch_size]\nkind = "int"\nlow = 16\nhigh = 128\n')
    code, out = tune_cli(tmp_path, "--program", f"{TINY}:data_pipeline", "--space",
                         str(space), "--trials", "24", "--sampler", "random", "--seed", "0")
    assert code == 0
    assert len(out["trials"]) == 24 and all(t["state"] == "COMPLETE" for t in out["trials"])
    with Store(tmp_path / "r.sqlite") as store:
        runs = store.runs(study=out["study_name"])
    others = sum(f["settings"] != out["baseline"]["settings"] for f in out["finalists"])
    assert others >= 1  # 24 trials, 3 rounds of the defaults and each other finalist
    assert len(runs) == 24 + 3 * (1 + others) >= 30
    assert all(r["status"] == "ok" for r in runs)
    assert out["baseline"]["stages"]  # Ray Data's operators, as Ray task names


INTERVAL = "RAY_task_events_report_interval_ms"
PROBE = textwrap.dedent("""
    import json, os, ray
    from rayjoule.runs.measured_block.task_events import report_interval_s

    @ray.remote
    def worker_interval():
        return os.environ.get("RAY_task_events_report_interval_ms")

    def probe(tasks=1):
        seen = {"worker": ray.get(worker_interval.options(name="probe.task").remote()),
                "driver_s": report_interval_s()}
        with open(os.environ["PROBE_OUT"], "a") as fh:
            fh.write(json.dumps(seen) + "\\n")
    """)
TUNE_OWN_INSTANCE = textwrap.dedent("""
    import json, os, sys, rayjoule
    report = rayjoule.tune_program(sys.argv[1], {"tasks": {"kind": "int", "low": 1, "high": 2}},
                                   trials=1, db=sys.argv[2], meter="tdp", idle_seconds=0)
    print(json.dumps({"after": os.environ.get("RAY_task_events_report_interval_ms"),
                      "stages": sorted(report.baseline["stages"])}))
    """)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("user_ms, expected_ms", [(None, "100"), ("700", "700")])
def test_a_tune_starting_its_own_ray_has_task_events_flushed_every_tenth_of_a_second(
        tmp_path, user_ms, expected_ms):
    """The tune's own local instance (not the session's: a child process) gets a 0.1 s
    report interval, its workers and the tuner's settle wait agree on it, a user's own
    setting wins, and the environment is as before once the tune is over."""
    program = tmp_path / "probe.py"
    program.write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k not in (INTERVAL, "RAY_ADDRESS")}
    env["PROBE_OUT"] = str(tmp_path / "seen.jsonl")
    if user_ms:
        env[INTERVAL] = user_ms
    done = subprocess.run([sys.executable, "-c", TUNE_OWN_INSTANCE, f"{program}:probe",
                           str(tmp_path / "r.sqlite")], env=env, capture_output=True,
                          text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = [json.loads(line) for line in (tmp_path / "seen.jsonl").read_text().splitlines()]
    # the unmeasured warm-up, the trial, and three re-run calls of the defaults, which are
    # also the only finalist (one trial), so they are called once a round
    assert len(seen) == 1 + 1 + 3
    assert all(s == {"worker": expected_ms, "driver_s": int(expected_ms) / 1000}
               for s in seen)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["after"] == user_ms  # set for the tune's instance only
    assert out["stages"] == ["probe.task"]  # the short interval still finds the tasks


def test_trials_of_one_setting_are_pooled_so_one_lucky_trial_does_not_win():
    """A setting drawn three times (10, 30, 32 J) ranks by its median, 30 J, behind a
    setting that cost 20 J once: the minimum of noisy trials is biased low."""
    from rayjoule.tuning.program_report import by_setting

    def trial(number: int, settings: dict, joules: float) -> optuna.trial.FrozenTrial:
        made = optuna.trial.create_trial(
            params={}, distributions={}, value=joules,
            user_attrs={"settings": settings, "total_j": joules, "wall_s": 1.0})
        made.number = number
        return made

    lucky, steady = {"tasks": 1}, {"tasks": 2}
    ranked = by_setting([trial(0, lucky, 30.0), trial(1, steady, 20.0),
                         trial(2, lucky, 10.0), trial(3, lucky, 32.0)])
    assert [[t.number for t in group] for group in ranked] == [[1], [0, 2, 3]]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("function", ["squares", "own_init"])
def test_sigterm_stops_a_program_tune_with_143_and_keeps_its_trials(tmp_path, function):
    """On a Ray instance of its own (a child process, as a user runs it), the program run
    inline or in a driver of its own (``own_init`` calls ``ray.init()``): SIGTERM once two
    runs are stored ends the tune with one line and exit 143, the finished trials are in
    the study and their runs in the store, and no process it started is left."""
    import signal
    import time

    import psutil

    from rayjoule.core.errors import ConfigError

    space = space_file(tmp_path, '[knob.tasks]\nkind = "int"\nlow = 1\nhigh = 4\n')
    db = tmp_path / "r.sqlite"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen([sys.executable, "-m", "rayjoule.tune", "--program",
                             f"{TINY}:{function}", "--space", str(space), "--trials", "200",
                             *FAST, "--db", str(db)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    ok = 0
    while ok < 2 and proc.poll() is None and time.monotonic() < deadline:
        try:
            with Store.open_read_only(db) as store:
                ok = sum(r["status"] == "ok" for r in store.runs())
        except ConfigError:  # not created yet
            pass
        time.sleep(0.3)
    assert proc.poll() is None, proc.stderr.read()[-2000:]
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("rayjoule")]
    assert len(lines) == 1 and lines[0].startswith("rayjoule: terminated (SIGTERM): ")
    assert "resume" in lines[0] and "Traceback" not in err
    study = optuna.load_study(study_name=None,
                              storage=f"sqlite:///{tmp_path / 'r.optuna.sqlite'}")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) >= 1  # the second stored run's trial may not have been told yet
    with Store(db) as store:
        kept = {r["run_id"] for r in store.runs() if r["status"] == "ok"}
    assert {t.user_attrs["run_id"] for t in complete} <= kept
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, [p.cmdline() for p in alive]


@pytest.mark.timeout(300)
def test_sigterm_stops_a_program_still_running_in_its_own_driver(tmp_path):
    """An interrupted tune ends a child driver whose program is still working with SIGTERM
    (the program's ``finally`` runs) instead of waiting for it, and prints nothing of the
    child's report protocol."""
    import signal
    import time

    marks = tmp_path / "marks"
    marks.mkdir()
    space = space_file(tmp_path, '[knob.tasks]\nkind = "int"\nlow = 1\nhigh = 4\n')
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAYJOULE_TEST_MARKS"] = str(marks)
    proc = subprocess.Popen([sys.executable, "-m", "rayjoule.tune", "--program",
                             f"{TINY}:own_init_until_stopped", "--space", str(space),
                             "--trials", "3", *FAST, "--db", str(tmp_path / "r.sqlite")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (marks / "started").exists() and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.3)
    assert (marks / "started").exists(), proc.stderr.read()[-2000:] if proc.poll() else ""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert (marks / "stopped").exists()  # stopped by SIGTERM, not waited for and killed
    assert "RAYJOULE-PROGRAM" not in out
