"""Validation: defaults, conversion of command-line strings, and errors naming the parameter."""

from __future__ import annotations

import pytest

import workloads
from workloads import WorkloadError, parse_param, parse_params


def test_defaults_filled():
    size, params = workloads.get("stock").validate()
    assert size == workloads.get("stock").default_size
    assert params == {"days": 730, "s0": 159.44, "drift": -0.00022513546014255100,
                      "std_dev": 0.0121678341323272, "flavour": "fast", "forecasts_per_call": 100}


def test_strings_are_converted_by_declared_type():
    size, params = workloads.get("mandelbrot").validate("64", "2", {"max_iter": "50", "x0": "-1"})
    assert size == 64 and params["max_iter"] == 50 and params["x0"] == -1.0
    assert isinstance(params["x0"], float)
    assert workloads.get("pi").validate("1e6")[0] == 1_000_000


def test_int_accepted_for_float_param():
    _, params = workloads.get("stock").validate(10, 1, {"s0": 100})
    assert params["s0"] == 100.0 and isinstance(params["s0"], float)


@pytest.mark.parametrize("tasks", [0, -1, "x", 1.5, True])
def test_bad_tasks(tasks):
    with pytest.raises(WorkloadError, match="tasks"):
        workloads.get("pi").validate(1000, tasks, {})


@pytest.mark.parametrize("size", [0, -5, "many", 2.5, False])
def test_bad_size(size):
    with pytest.raises(WorkloadError, match="size"):
        workloads.get("primes").validate(size, 1, {})


def test_sleep_size_is_float_and_may_be_zero():
    assert workloads.get("sleep").validate("0.5")[0] == 0.5
    assert workloads.get("sleep").validate(0)[0] == 0.0
    with pytest.raises(WorkloadError, match="size"):
        workloads.get("sleep").validate(-1)


@pytest.mark.parametrize(
    ("name", "params", "named"),
    [
        ("mandelbrot", {"max_iter": "lots"}, "max_iter"),
        ("mandelbrot", {"max_iter": 2.5}, "max_iter"),
        ("mandelbrot", {"max_iter": True}, "max_iter"),
        ("mandelbrot", {"max_iter": 0}, "max_iter"),
        ("mandelbrot", {"x0": 2.0}, "x0"),
        ("mandelbrot", {"y1": float("nan")}, "y1"),
        ("pi", {"kernel": "fortran"}, "kernel"),
        ("pi", {"kernel": 3}, "kernel"),
        ("pi", {"colour": "red"}, "colour"),
        ("stock", {"days": 0}, "days"),
        ("stock", {"s0": 0}, "s0"),
        ("stock", {"std_dev": -0.1}, "std_dev"),
        ("stock", {"drift": "up"}, "drift"),
        ("primes", {"limit": 10}, "limit"),
        ("airbnb", {"data": 5}, "data"),
        ("airbnb", {"data": ""}, "data"),
    ],
)
def test_bad_params_name_the_parameter(name, params, named):
    with pytest.raises(WorkloadError, match=named):
        workloads.get(name).validate(None, 1, params)


def test_bad_params_also_fail_execute():
    with pytest.raises(WorkloadError, match="colour"):
        workloads.execute("pi", size=10, colour="red")
    with pytest.raises(WorkloadError, match="seed"):
        workloads.execute("pi", size=10, seed=-1)


def test_parse_param():
    wl = workloads.get("mandelbrot")
    assert parse_param(wl, "max_iter=300") == ("max_iter", 300)
    assert parse_param(wl, " x1 = 0.5") == ("x1", 0.5)
    assert parse_params(wl, ["max_iter=1", "max_iter=2"]) == {"max_iter": 2}
    assert parse_param(workloads.get("airbnb"), "data=s3://b/k?x=1") == ("data", "s3://b/k?x=1")
    for bad, named in [("max_iter", "max_iter"), ("=3", "=3"), ("depth=3", "depth"),
                       ("max_iter=x", "max_iter")]:
        with pytest.raises(WorkloadError, match=named):
            parse_param(wl, bad)
