"""Registry, pickling and the shape of the map/reduce contract, for every workload."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

import workloads
from workloads import Workload, WorkloadError

SMALL = {
    "pi": (300_000, {}),
    "mandelbrot": (24, {"max_iter": 30}),
    "stock": (200, {"days": 30}),
    "airbnb": (50, {}),
    "primes": (10_000, {}),
    "sleep": (0.0, {}),
}


def test_names_lists_all_six():
    assert workloads.names() == ["pi", "mandelbrot", "stock", "airbnb", "primes", "sleep"]
    for name in workloads.names():
        wl = workloads.get(name)
        assert isinstance(wl, Workload)
        assert wl.name == name
        assert wl.description and wl.size_meaning and wl.default_size


def test_unknown_workload_lists_known_ones():
    with pytest.raises(WorkloadError) as err:
        workloads.get("fibonacci")
    message = str(err.value)
    assert "fibonacci" in message
    assert all(name in message for name in workloads.names())


@pytest.mark.parametrize("name", sorted(SMALL))
def test_workload_and_map_pickle_by_reference(name):
    wl = workloads.get(name)
    assert pickle.loads(pickle.dumps(wl)) == wl
    assert pickle.loads(pickle.dumps(wl.map)) is wl.map
    assert len(pickle.dumps(wl.map)) < 100  # a reference (module + name), not code


@pytest.mark.parametrize("name", sorted(SMALL))
def test_partition_returns_exactly_tasks_picklable_chunks(name):
    wl = workloads.get(name)
    size, params = wl.validate(SMALL[name][0], 5, SMALL[name][1])
    chunks = wl.partition(5, size, 0, params)
    assert len(chunks) == 5
    assert pickle.loads(pickle.dumps(chunks)) == chunks
    assert all(len(pickle.dumps(chunk)) < 1024 for chunk in chunks)
    partials = [wl.map(chunk) for chunk in chunks]
    assert pickle.loads(pickle.dumps(partials)) is not None


@pytest.mark.parametrize("name", sorted(SMALL))
def test_summary_is_json_safe(name):
    size, params = SMALL[name]
    summary = workloads.execute(name, size=size, tasks=2, **params)
    assert json.loads(json.dumps(summary)) == summary
    assert all(type(v) in (int, float, str) for v in summary.values())


def test_more_tasks_than_work_gives_empty_chunks():
    summary = workloads.execute("mandelbrot", size=3, tasks=8, max_iter=10)
    assert summary == workloads.execute("mandelbrot", size=3, tasks=1, max_iter=10)


def test_map_runs_in_spawned_worker_processes():
    wl = workloads.get("pi")
    size, params = wl.validate(600_000, 3, {})
    chunks = wl.partition(3, size, 7, params)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        partials = list(pool.map(wl.map, chunks))
    assert wl.summary(wl.reduce(partials)) == workloads.execute("pi", size=size, seed=7)


def test_import_stays_light():
    code = ("import sys, workloads; workloads.get('airbnb');"
            "print(sorted(m for m in ('pyarrow', 'vaderSentiment', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
