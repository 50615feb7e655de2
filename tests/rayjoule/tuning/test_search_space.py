import pytest

from rayjoule.core.errors import ConfigError
from rayjoule.tuning.space import Range, SearchSpace, parse_range
from rayjoule.tuning.tuner import default_storage, parse_objective


def test_parse_range_fixed_and_bounded():
    assert parse_range("tasks", "8") == Range(8, 8)
    assert parse_range("tasks", "4:128") == Range(4, 128)
    assert parse_range("num_cpus", "0.25:2", float) == Range(0.25, 2.0)


def test_whole_numbers_may_be_written_in_exponent_form():
    """``--tasks 1:1e3`` is 1..1000 (was "not a int"); 0.5 tasks is still refused."""
    r = parse_range("tasks", "1:1e3")
    assert r == Range(1, 1000) and isinstance(r.high, int)
    assert parse_range("tasks", "9007199254740993").high == 9007199254740993  # no rounding
    with pytest.raises(ConfigError, match="not a whole number"):
        parse_range("tasks", "0.5:2")


@pytest.mark.parametrize("text, match", [
    ("8:4", "inverted"), ("", "expects"), ("4:", "expects"), ("a:b", "not a whole number"),
    ("0:4", "> 0"), ("1:2:3", "expects"), ("1:inf", "finite"), ("1:nan", "finite"),
])
def test_parse_range_rejects_bad_input(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_range("tasks", text)


def test_grid_is_finite_and_respects_fixed_dimensions():
    space = SearchSpace(("ray",), Range(1, 16), Range(2, 2), Range(0.25, 2.0), ("tasks", "actors"))
    grid = space.grid()
    assert grid["tasks"] == [1, 2, 4, 8, 16]
    assert "concurrency" not in grid
    assert grid["mode"] == ["tasks", "actors"] and grid["num_cpus"] == [0.25, 0.5, 1.0, 2.0]


def test_unknown_framework_or_mode():
    with pytest.raises(ConfigError, match="unknown framework"):
        SearchSpace(("spark",), Range(1, 2), Range(1, 2), Range(1, 1), ("tasks",))
    with pytest.raises(ConfigError, match="unknown mode"):
        SearchSpace(("ray",), Range(1, 2), Range(1, 2), Range(1, 1), ("threads",))


def test_objectives():
    assert parse_objective("energy") == ("energy",)
    assert parse_objective("energy,time") == ("energy", "time")
    for bad in ("joules", "energy,energy", "time", "energy,time,dynamic", ""):
        with pytest.raises(ConfigError):
            parse_objective(bad)


def test_default_storage_sits_beside_the_store(tmp_path):
    assert default_storage(tmp_path / "r.sqlite") == f"sqlite:///{tmp_path}/r.optuna.sqlite"
    assert default_storage("/x/a?b%c/r.sqlite") == "sqlite:////x/a%3Fb%25c/r.optuna.sqlite"
