"""Same name, size, seed and params give the same summary for any number of tasks."""

from __future__ import annotations

import random

import pytest

import workloads

CASES = {
    "pi-numpy": ("pi", 1_000_003, {}),
    "pi-python": ("pi", 300_001, {"kernel": "python"}),
    "mandelbrot": ("mandelbrot", 41, {"max_iter": 60}),
    "stock": ("stock", 1_001, {}),
    "airbnb": ("airbnb", 301, {}),
    "primes": ("primes", 3 * 2**20 + 5, {}),
    "sleep": ("sleep", 0.03, {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_summary_identical_for_1_3_8_tasks(case):
    name, size, params = CASES[case]
    summaries = [workloads.execute(name, size=size, tasks=t, seed=3, **params) for t in (1, 3, 8)]
    assert summaries[0] == summaries[1] == summaries[2]


@pytest.mark.parametrize("case", sorted(CASES))
def test_reduce_does_not_depend_on_partial_order(case):
    name, size, params = CASES[case]
    wl = workloads.get(name)
    size, values = wl.validate(size, 6, params)
    partials = [wl.map(chunk) for chunk in wl.partition(6, size, 1, values)]
    shuffled = partials[:]
    random.Random(0).shuffle(shuffled)
    assert wl.summary(wl.reduce(shuffled)) == wl.summary(wl.reduce(partials))


@pytest.mark.parametrize("name", ["pi", "stock", "airbnb"])
def test_seed_changes_random_workloads(name):
    size = {"pi": 200_000, "stock": 300, "airbnb": 200}[name]
    assert workloads.execute(name, size=size, seed=1) != workloads.execute(name, size=size, seed=2)
