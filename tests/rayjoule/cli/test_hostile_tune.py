"""A hostile user's inputs to ``python -m rayjoule.tune`` (workloads and ``--program``): each
is one line on stderr and exit status 2, found before any work, with the results store and
the Optuna storage byte-identical and no file created."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from rayjoule.cli import tune
from rayjoule.cli.common import run_command
from tests.tests_support.refusals import assert_refused

METER = ["--meter", "tdp", "--idle-seconds", "0"]
SLEEP = ["--workload", "sleep", "--size", "0", "--frameworks", "native", "--tasks", "1:2",
         "--concurrency", "1:2", "--trials", "1", *METER]
KNOBS = '[knob.tasks]\nkind = "int"\nlow = 1\nhigh = 4\n'
PROGRAMS = {
    "hp_good.py": "def run(tasks=2, mode='a'):\n    return tasks\n\n"
                  "class Job:\n    def __init__(self, tasks=2):\n        self.tasks = tasks\n",
    "hp_raises.py": "raise ValueError('boom at import')\n",
    "hp_exits.py": "import sys\nsys.exit(0)\n",
    "hp_exits3.py": "import sys\nsys.exit(3)\n",
}


def cli(argv: list[str]) -> int:
    """The command as ``python -m rayjoule.tune`` runs it: its exit status."""
    try:
        return run_command(tune.main, argv)
    except SystemExit as exc:  # argparse's usage errors
        return int(exc.code)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory) -> Path:
    """A folder with a results store and an Optuna storage holding a finished native tune
    of ``sleep`` (study ``s``), another application's SQLite file, a junk file, the knobs
    and the hostile programs."""
    d = tmp_path_factory.mktemp("tuned")
    assert cli([*SLEEP, "--db", str(d / "r.sqlite"), "--study-name", "s"]) == 0
    con = sqlite3.connect(d / "other.sqlite")
    con.execute("CREATE TABLE notes (x)")
    con.commit()
    con.close()
    (d / "junk.bin").write_bytes(b"\x00\xffnot sqlite at all" * 100)
    (d / "k.toml").write_text(KNOBS)
    for name, text in PROGRAMS.items():
        (d / name).write_text(text)
    return d


@pytest.fixture
def work(tuned, tmp_path, monkeypatch) -> Path:
    """A copy of the folder of one's own, on the import path (programs by module name)."""
    for p in tuned.iterdir():
        shutil.copy(p, tmp_path / p.name)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def refused(argv: list[str], folder: Path, capsys, fragment: str) -> str:
    """Run; assert exit 2, one stderr line holding ``fragment``, the folder unchanged."""
    names = {"db": folder / "r.sqlite", "optuna": folder / "r.optuna.sqlite", "d": folder}
    argv = [a.format(**{k: str(v) for k, v in names.items()}) for a in argv]
    return assert_refused(lambda: cli(argv), folder, capsys, fragment)


# -- workloads ---------------------------------------------------------------------------------
TUNE_BAD = [
    # a corner of the space the run's own check refuses: found before the first trial
    (["--tasks", "1:1000000000000"], "use fewer tasks"),
    (["--concurrency", "1:100000"], "concurrency 100000 on native"),
    (["--size", "1e300"], "is estimated to run"),
    # the trials together, even at the quickest corner, past --max-hours
    (["--trials", "1000000000000"], "1000000000000 trial(s) × 1 repeat(s) are estimated"),
    (["--repeats", "1000000000"], "repeat(s) are estimated to take"),
    (["--seed", str(2**40)], "--seed must be a whole number from 0 to 4294967295"),
    (["--max-seconds", "inf"], "--max-seconds must be > 0 and finite"),
    (["--frameworks", "native,native"], "--frameworks gives native twice"),
    (["--mode", "actors"], "--mode actors is a Ray mode"),
    (["--concurrency", ""], "--concurrency expects N or LOW:HIGH"),
    (["--tasks", "pca=1:4"], "unknown stage 'pca'"),
    (["--meter", "bogus"], "unknown meter 'bogus'"),
    # outputs over the stores
    (["--json", "{db}"], "is the results store"),
    (["--plot", "{db}"], "is the results store"),
    (["--json", "{optuna}"], "is the Optuna storage"),
    # storages that are not Optuna's: read, never written
    (["--storage", "sqlite:///{db}"], "is the results store (--db)"),
    (["--storage", "sqlite:///{d}/junk.bin"], "is not an SQLite database"),
    (["--storage", "sqlite:///{d}/other.sqlite"], "not an Optuna storage"),
    (["--storage", "sqlite:///{d}"], "is a folder"),
    # an existing study of another tune is not resumed (nor its description overwritten)
    (["--study-name", "s", "--size", "0.5"], "was made with size 0.0"),
    (["--study-name", "s", "--workload", "pi", "--size", "1000"], "was made with workload"),
    (["--study-name", "s", "--objective", "energy,time"], "was made with objective"),
    (["--study-name", "s", "--max-seconds", "5"], "was made with max_seconds"),
    # Optuna's grid sampler lists every point up front
    (["--sampler", "grid", "--frameworks", "ray", "--concurrency", "1:100000"],
     "--sampler grid tries every concurrency: 100000 values"),
    # --sampler model on a store without pi's profiles profiles first: its design is
    # checked as `profile` checks it (10 runs of at least 0.05 s > 0.36 s), before any run
    (["--sampler", "model", "--workload", "pi", "--size", "2000000", "--max-hours", "0.0001"],
     "--sampler model profiles pi first"),
]


@pytest.mark.parametrize("extra, fragment", TUNE_BAD,
                         ids=[" ".join(e)[:50] for e, _ in TUNE_BAD])
def test_tune_refuses_bad_input_before_any_work(work, capsys, extra, fragment):
    refused([*SLEEP, "--db", "{db}", *extra], work, capsys, fragment)


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None,
                    reason="PyTorch is installed: --sampler gp works")
def test_gp_without_pytorch_is_refused_before_anything_is_written(work, capsys):
    refused([*SLEEP, "--db", "{db}", "--sampler", "gp"], work, capsys, "needs PyTorch")


def test_a_store_in_a_folder_whose_name_holds_a_question_mark(work, capsys):
    """The default storage beside it is that folder's (its URL percent-encoded): a raw
    ``?`` ended SQLAlchemy's path there and wrote a file named after the folder's prefix."""
    folder = work / "runs?v=2"
    folder.mkdir()
    code = cli([*SLEEP, "--db", str(folder / "r.sqlite")])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".sqlite") == \
        ["r.optuna.sqlite", "r.sqlite"]
    assert not (work / "runs").exists()


def test_the_same_tune_resumes_its_study(work, capsys):
    """What the study guard must let through: the command that made the study, again."""
    code = cli([*SLEEP, "--db", str(work / "r.sqlite"), "--study-name", "s"])
    out = capsys.readouterr().out
    assert code == 0
    assert "study s (2 trials)" in " ".join(out.split())


# -- programs ----------------------------------------------------------------------------------
PROGRAM_BAD = [
    (["--program", "hp_good:Job"], "'Job' is a class; give a function"),
    (["--program", "hp_raises:run"], "importing hp_raises failed: ValueError: boom at import"),
    (["--program", "hp_exits:run"], "hp_exits called sys.exit(0) while being imported"),
    (["--program", "{d}/hp_exits3.py:run"], "hp_exits3.py called sys.exit(3) while being"),
    (["--seed=-1"], "--seed must be a whole number from 0"),
    (["--max-seconds", "inf"], "--max-seconds must be > 0 and finite"),
    (["--idle-seconds", "nan"], "--idle-seconds must be >= 0 and finite"),
    (["--meter", "bogus"], "unknown meter 'bogus'"),
    (["--json", "{d}/k.toml"], "is the knobs (--space)"),
    (["--program", "{d}/hp_good.py:run", "--json", "{d}/hp_good.py"], "is the program's file"),
    (["--json", "{db}"], "is the results store"),
    (["--storage", "sqlite:///{db}"], "is the results store (--db)"),
    (["--storage", "sqlite:///{d}/other.sqlite"], "not an Optuna storage"),
    (["--study-name", "s"], "tunes workload 'sleep', not a program"),
    (["--address", "127.0.0.1:9"], "cannot reach the Ray cluster"),
    # counts no program could finish (0.35 s a call besides the program) within --max-hours
    (["--trials", "1000000000000"], "1000000000009 metered calls"),
    (["--rerun", "1000000000"], "3000000002 metered calls"),
    (["--max-hours", "inf"], "--max-hours must be > 0 and finite"),
    (["--sampler", "grid", "--trials", "100000"], "use fewer --trials"),
]


@pytest.mark.parametrize("extra, fragment", PROGRAM_BAD,
                         ids=[" ".join(e)[:50] for e, _ in PROGRAM_BAD])
def test_program_tune_refuses_bad_input_before_any_work(work, capsys, extra, fragment):
    refused(["--program", "hp_good:run", "--space", "{d}/k.toml", "--db", "{db}", *METER,
             "--trials", "2", *extra], work, capsys, fragment)


SPACE_BAD = [
    ('[knob.mode]\nkind = "categorical"\nchoices = ["a", 1, 1.0]\n',
     "choices 1 and 1.0 are equal in Python"),
    ('[knob.mode]\nkind = "categorical"\nchoices = ["a", true, 1]\n',
     "choices True and 1 are equal in Python"),
    ('[knob.mode]\nkind = "categorical"\nchoices = ["a", nan]\n', "choices must be finite"),
    ('[knob.tasks]\nkind = "int"\nlow = 1\nhigh = 1000000000\nstep = 1\n',
     "--sampler grid would try 1000000000 values"),
    ('[knob.mode]\nkind = "categorical"\nchoices = ["a", '
     + ", ".join(map(str, range(1000))) + "]\n", "1001 choices; at most 1000"),
]


@pytest.mark.parametrize("text, fragment", SPACE_BAD, ids=[f for _, f in SPACE_BAD])
def test_a_space_optuna_would_mangle_is_refused(work, capsys, text, fragment):
    (work / "k.toml").write_text(text)
    refused(["--program", "hp_good:run", "--space", "{d}/k.toml", "--db", "{db}", *METER,
             "--sampler", "grid"], work, capsys, fragment)


CHATTY = '''import ray

print("module says hi")


@ray.remote
def square(n):
    return n * n


def chatty(tasks=2):
    print("program says hi")
    return sum(ray.get([square.options(name="chatty.square").remote(i) for i in range(tasks)]))
'''


def test_with_json_on_stdout_the_programs_own_prints_go_to_stderr(ray_session, work, capsys):
    """``--json -``: stdout is the JSON alone (the program's prints once came first there)."""
    (work / "hp_chatty.py").write_text(CHATTY)
    code = cli(["--program", f"{work}/hp_chatty.py:chatty", "--space", str(work / "k.toml"),
                "--db", str(work / "r.sqlite"), *METER, "--trials", "1", "--json", "-"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["program"].endswith("hp_chatty.py:chatty")
    assert "program says hi" in err and "module says hi" in err
