"""A program's knob space and ``--program``: bad input is one line, exit 2, nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from rayjoule.cli import tune
from rayjoule.cli.common import run_command
from rayjoule.core.errors import ConfigError
from rayjoule.tuning.program_loading import calls_ray_init, choose_driver, load_program
from rayjoule.tuning.program_space import ProgramSpace

PROGRAMS = Path(__file__).resolve().parents[2] / "tests_support" / "programs"
TINY = f"{PROGRAMS / 'tiny_ray.py'}:squares"
GOOD = '[knob.tasks]\nkind = "int"\nlow = 1\nhigh = 4\n'


def cli(argv: list[str]) -> int:
    """The command as ``python -m rayjoule.tune`` runs it: its exit status."""
    try:
        return run_command(tune.main, argv)
    except SystemExit as exc:  # argparse's usage errors
        return int(exc.code)


def etl(concurrency=2, batch_size=1024, num_cpus=1.0, fmt="csv"):
    return concurrency, batch_size, num_cpus, fmt


def test_a_space_is_checked_against_the_function_and_gives_defaults_and_a_grid():
    space = ProgramSpace.from_mapping({
        "concurrency": {"kind": "int", "low": 1, "high": 8, "step": 2},
        "batch_size": {"kind": "int", "low": 64, "high": 4096, "log": True},
        "num_cpus": {"kind": "float", "low": 0.5, "high": 2.0},
        "fmt": {"kind": "categorical", "choices": ["csv", "parquet"]}}, etl)
    assert space.defaults(etl) == {"concurrency": 2, "batch_size": 1024, "num_cpus": 1.0,
                                   "fmt": "csv"}
    grid = space.grid()
    assert grid["concurrency"] == [1, 3, 5, 7] and grid["fmt"] == ["csv", "parquet"]
    assert grid["batch_size"][0] == 64 and grid["batch_size"][-1] == 4096
    assert min(grid["num_cpus"]) == 0.5 and max(grid["num_cpus"]) == 2.0


BAD_SPACES = {
    "unknown key": ('[knob.tasks]\nkind = "int"\nlow = 1\nhigh = 4\nbogus = 1\n', "bogus"),
    "unknown knob": ('[knob.workers]\nkind = "int"\nlow = 1\nhigh = 4\n', "workers"),
    "low above high": ('[knob.tasks]\nkind = "int"\nlow = 5\nhigh = 4\n', "low 5 > high 4"),
    "empty choices": ('[knob.mode]\nkind = "categorical"\nchoices = []\n', "non-empty"),
    "unknown kind": ('[knob.tasks]\nkind = "bool"\n', "kind must be"),
    "kind against default": ('[knob.mode]\nkind = "int"\nlow = 1\nhigh = 2\n', "default"),
    "float bounds for an int": ('[knob.tasks]\nkind = "int"\nlow = 1.5\nhigh = 4\n', "whole"),
    "missing high": ('[knob.tasks]\nkind = "int"\nlow = 1\n', "needs high"),
    "default not a choice": ('[knob.mode]\nkind = "categorical"\nchoices = ["x"]\n',
                             "not one of its choices"),
    "not TOML": ("this is [not toml\n", "not a TOML file"),
    "no knob table": ('[knobs.tasks]\nkind = "int"\n', "unknown table"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPACES))
def test_a_bad_space_file_is_one_line_exit_2_and_nothing_stored(case, tmp_path, capsys):
    text, words = BAD_SPACES[case]
    space = tmp_path / "knobs.toml"
    space.write_text(text)
    db = tmp_path / "r.sqlite"
    code = cli(["--program", TINY, "--space", str(space), "--db", str(db)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and words in err, err
    assert list(tmp_path.iterdir()) == [space]  # no store, no Optuna storage


BAD_PROGRAMS = {
    "no colon": ("tiny_ray", "module:FUNCTION"),
    "module not importable": ("no_such_package.mod:f", "cannot be imported"),
    "file missing": (f"{PROGRAMS / 'missing.py'}:squares", "no such file"),
    "attribute missing": (f"{PROGRAMS / 'tiny_ray.py'}:nothing", "no attribute 'nothing'"),
    "not callable": (f"{PROGRAMS / 'tiny_ray.py'}:ray", "not callable"),
    "no keyword defaults": ("math:sqrt", "no keyword arguments with defaults"),
    "not a function name": (f"{PROGRAMS / 'tiny_ray.py'}:", "function name"),
}


@pytest.mark.parametrize("case", sorted(BAD_PROGRAMS))
def test_a_bad_program_is_one_line_exit_2_and_nothing_stored(case, tmp_path, capsys):
    spec, words = BAD_PROGRAMS[case]
    space = tmp_path / "knobs.toml"
    space.write_text(GOOD)
    code = cli(["--program", spec, "--space", str(space),
                                   "--db", str(tmp_path / "r.sqlite")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and words in err, err
    assert list(tmp_path.iterdir()) == [space]


@pytest.mark.parametrize("argv, words", [
    (["--space", "x.toml"], "give --program"),
    (["--program", TINY], "--space"),
    (["--program", TINY, "--space", "x.toml", "--workload", "pi"], "unrecognized"),
    (["--program", TINY, "--space", "x.toml", "--trials", "0"], "--trials"),
    (["--program", TINY, "--space", "x.toml", "--sampler", "model"], "--sampler"),
    (["--program", TINY, "--space", "x.toml", "--rerun", "2"], "--rerun"),
    (["--program", TINY, "--space", "x.toml", "--finalists", "0"], "--finalists"),
])
def test_program_options_are_checked_before_anything_runs(argv, words, tmp_path, capsys,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.toml").write_text(GOOD)
    code = cli(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and words in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.toml"]


def test_a_file_program_loads_and_its_functions_ship_by_value():
    program = load_program(TINY)
    assert program.name == "squares" and program.folder == str(PROGRAMS)
    import sys

    assert program.fn.__module__ not in sys.modules  # cloudpickle sends it by value


def test_the_driver_is_a_child_process_exactly_when_the_program_calls_ray_init():
    own = load_program(f"{PROGRAMS / 'tiny_ray.py'}:own_init").fn
    plain = load_program(TINY).fn
    assert calls_ray_init(own) and not calls_ray_init(plain)
    assert choose_driver("auto", own) == "process" and choose_driver("auto", plain) == "inline"
    assert choose_driver("process", plain) == "process"
    with pytest.raises(ConfigError, match="--driver"):
        choose_driver("thread", plain)
