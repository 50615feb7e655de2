"""The ``flavour`` parameter of the workloads that came from Lithops applications.

Every flavour keeps the contract: the same summary for any ``tasks`` and any partial order,
small picklable chunks, JSON-safe summaries that say which flavour ran.
"""

from __future__ import annotations

import json
import pickle
import random

import pytest

import workloads
from workloads import WorkloadError

THESIS = ("pi", "stock", "mandelbrot", "airbnb")

LITHOPS_SMALL = {
    "pi": (50_001, {"points_per_call": 7_000}),
    "stock": (23, {"forecasts_per_call": 5, "days": 40}),
    "mandelbrot": (16, {}),
    "airbnb": (99, {}),
}
"""Small sizes that still give each workload several calls to spread over tasks."""

LITHOPS_DEFAULTS = {"pi": 10**9, "stock": 1000, "mandelbrot": 768, "airbnb": 33 * 1500}


@pytest.mark.parametrize("name", THESIS)
def test_flavour_param_defaults_to_fast(name):
    param = workloads.get(name).param("flavour")
    assert param.choices == ("fast", "lithops") and param.default == "fast"
    assert "lithops-cloud/applications" in param.help
    _, params = workloads.get(name).validate(None, 1, {})
    assert params["flavour"] == "fast"
    with pytest.raises(WorkloadError, match="flavour"):
        workloads.get(name).validate(None, 1, {"flavour": "thesis"})


@pytest.mark.parametrize("name", THESIS)
def test_lithops_default_size_is_the_originals(name):
    assert workloads.get(name).validate(None, 1, {"flavour": "lithops"})[0] == (
        LITHOPS_DEFAULTS[name])


@pytest.mark.parametrize("name", THESIS)
def test_lithops_summary_identical_for_1_3_8_tasks(name):
    size, params = LITHOPS_SMALL[name]
    summaries = [workloads.execute(name, size=size, tasks=t, seed=3, flavour="lithops", **params)
                 for t in (1, 3, 8)]
    assert summaries[0] == summaries[1] == summaries[2]
    assert summaries[0]["flavour"] == "lithops"
    assert json.loads(json.dumps(summaries[0])) == summaries[0]
    assert all(type(v) in (int, float, str) for v in summaries[0].values())


@pytest.mark.parametrize("name", THESIS)
def test_lithops_reduce_does_not_depend_on_partial_order(name):
    size, params = LITHOPS_SMALL[name]
    wl = workloads.get(name)
    size, values = wl.validate(size, 6, {"flavour": "lithops", **params})
    chunks = wl.partition(6, size, 1, values)
    assert len(chunks) == 6
    assert all(len(pickle.dumps(chunk)) < 4096 for chunk in chunks)
    partials = [wl.map(chunk) for chunk in chunks]
    shuffled = partials[:]
    random.Random(0).shuffle(shuffled)
    assert wl.summary(wl.reduce(shuffled)) == wl.summary(wl.reduce(partials))


@pytest.mark.parametrize("name", ["pi", "stock", "airbnb"])
def test_lithops_seed_changes_random_workloads(name):
    size, params = LITHOPS_SMALL[name]
    one = workloads.execute(name, size=size, seed=1, flavour="lithops", **params)
    two = workloads.execute(name, size=size, seed=2, flavour="lithops", **params)
    assert one != two


@pytest.mark.parametrize("name", THESIS)
def test_fast_summaries_say_fast(name):
    size = {"pi": 10_000, "stock": 10, "mandelbrot": 8, "airbnb": 20}[name]
    assert workloads.execute(name, size=size)["flavour"] == "fast"
