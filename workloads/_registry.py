"""Workloads by name, and the serial in-process reference run.

The registry is a fixed tuple built at import (no mutable global): the workload modules are
light, because numpy is their only import-time dependency (pyarrow and vaderSentiment load
inside the functions that need them).
"""

from __future__ import annotations

from typing import Any

from workloads import airbnb, mandelbrot, pi, primes, sleep, stock
from workloads._base import Size, Workload, WorkloadError, check_seed, check_tasks

_WORKLOADS: tuple[Workload, ...] = (
    pi.WORKLOAD,
    mandelbrot.WORKLOAD,
    stock.WORKLOAD,
    airbnb.WORKLOAD,
    primes.WORKLOAD,
    sleep.WORKLOAD,
)


def names() -> list[str]:
    """Names of the registered workloads, in a stable order."""
    return [wl.name for wl in _WORKLOADS]


def get(name: str) -> Workload:
    """The workload called ``name``; an unknown name raises WorkloadError listing the known.

    >>> get("pi").default_size
    500000000
    """
    for wl in _WORKLOADS:
        if wl.name == name:
            return wl
    raise WorkloadError(f"unknown workload {name!r} (known: {', '.join(names())})")


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
