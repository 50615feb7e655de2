"""Workloads and pipelines by name, user code by import path, and the serial reference runs.

The registry is fixed tuples built at import (no mutable global; the only state is the
``lru_cache`` of wrapped workloads): the modules are light, because numpy is their only
import-time dependency (pyarrow, scikit-learn and vaderSentiment load inside the functions
that need them). User code comes in by import path (``package.module:NAME``) or through the
entry-point groups ``rayjoule.workloads`` and ``rayjoule.pipelines``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from workloads import _loading, airbnb, mandelbrot, ml, pi, primes, sleep, stock, video, wordcount
from workloads._base import Size, Workload, WorkloadError, check_seed, check_tasks
from workloads._datastore import DataStore
from workloads._pipeline import Pipeline, as_pipeline
from workloads._serial import run_serial

_WORKLOADS: tuple[Workload, ...] = (
    pi.WORKLOAD,
    mandelbrot.WORKLOAD,
    stock.WORKLOAD,
    airbnb.WORKLOAD,
    primes.WORKLOAD,
    sleep.WORKLOAD,
)

_PIPELINES: tuple[Pipeline, ...] = (
    ml.PIPELINE,
    wordcount.PIPELINE,
    video.PIPELINE,
)


def names() -> list[str]:
    """Names of the registered single-stage workloads, in a stable order."""
    return [wl.name for wl in _WORKLOADS]


def pipeline_names() -> list[str]:
    """Names of the built-in multi-stage pipelines, in a stable order."""
    return [p.name for p in _PIPELINES]


def get(name: str) -> Workload:
    """The workload called ``name``, at an import path, or under a ``rayjoule.workloads``
    entry point; anything else raises WorkloadError listing the known names.

    >>> get("pi").default_size
    500000000
    >>> get("workloads.primes:WORKLOAD").name
    'primes'
    """
    for wl in _WORKLOADS:
        if wl.name == name:
            return wl
    if _loading.is_import_path(name):
        return _loading.check_workload(_loading.load_path(name), name)
    plugin = _loading.entry_point(_loading.WORKLOAD_GROUP, name)
    if plugin is not None:
        return _loading.check_workload(plugin, f"entry point {_loading.WORKLOAD_GROUP}:{name}")
    if name in pipeline_names():
        raise WorkloadError(f"{name!r} is a multi-stage pipeline, not a single-stage workload "
                            "(use workloads.get_pipeline)")
    raise WorkloadError(f"unknown workload {name!r} (known: {', '.join(names())})")


def get_pipeline(name: str) -> Pipeline:
    """A built-in pipeline, a built-in workload as a one-stage pipeline, user code at an
    import path (a Workload or Pipeline), or an entry point in ``rayjoule.pipelines`` /
    ``rayjoule.workloads``.

    >>> [s.name for s in get_pipeline("wordcount").stages]
    ['map', 'reduce', 'top']
    >>> get_pipeline("pi").stages[0].name
    'map'
    """
    for pipeline in _PIPELINES:
        if pipeline.name == name:
            return pipeline
    for wl in _WORKLOADS:
        if wl.name == name:
            return _wrapped(wl)
    if _loading.is_import_path(name):
        return _loading.check_pipeline(_loading.load_path(name), name)
    for group in (_loading.PIPELINE_GROUP, _loading.WORKLOAD_GROUP):
        plugin = _loading.entry_point(group, name)
        if plugin is not None:
            return _loading.check_pipeline(plugin, f"entry point {group}:{name}")
    known = pipeline_names() + names()
    raise WorkloadError(f"unknown workload or pipeline {name!r} (known: {', '.join(known)}; "
                        "or give "
                        "package.module:NAME)")


@functools.cache
def _wrapped(workload: Workload) -> Pipeline:
    """One wrapper per built-in workload, so repeated look-ups return the same object."""
    return as_pipeline(workload)


def execute(
    name: str, size: Size | str | None = None, tasks: int = 1, seed: int = 0, **params: Any
) -> dict[str, Any]:
    """Run a workload serially in this process and return its summary.

    This is the reference every framework's result is checked against: the same
    ``partition -> map -> reduce -> summary`` steps, with no parallelism.

    >>> execute("primes", size=100, tasks=3)
    {'limit': 100, 'count': 25, 'max_prime': 97}
    """
    wl = get(name)
    tasks = check_tasks(tasks)
    seed = check_seed(seed)
    size, values = wl.validate(size, tasks, params, seed)
    chunks = wl.partition(tasks, size, seed, values)
    return wl.summary(wl.reduce([wl.map(chunk) for chunk in chunks]))


def execute_pipeline(
    name: str,
    size: Size | str | None = None,
    tasks: int | Mapping[str, Any] | None = None,
    seed: int = 0,
    store: str | DataStore | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Run a pipeline serially in this process (optionally through a data store).

    >>> execute_pipeline("wordcount", size=1000, tasks={"map": 3}, top_k=2)["top"]
    'bebeba:123 bebebe:71'
    """
    pipeline = get_pipeline(name)
    if isinstance(store, str):
        store = DataStore.from_uri(store)
    return run_serial(pipeline, size, tasks, seed, params, store)
