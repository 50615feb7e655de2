"""How long a built-in workload will run and how much memory a run's bookkeeping needs,
so that absurd requests are refused up front instead of running for hours or growing until
the kernel kills the process.

The CPU costs per unit of ``size`` were measured on the 2-vCPU development VM (AMD EPYC) by
``experiments/bench_workloads.py`` and ``experiments/bench_flavours.py``; a faster machine
finishes sooner, so the estimate errs long. User workloads have no entry: they are never
refused on time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: CPU-seconds per unit of size, (workload, flavour) → (seconds, how size maps to units)
CPU_S_PER_UNIT: dict[tuple[str, str], tuple[float, str]] = {
    ("pi", "fast"): (5.4e-9, "points"),
    ("pi", "lithops"): (2.3e-7, "points"),
    ("mandelbrot", "fast"): (2.6e-7, "pixels = size²"),
    ("mandelbrot", "lithops"): (1.8e-6 * 7, "pixels = size² per frame, 7 frames"),
    ("stock", "fast"): (1.04e-5, "forecasts"),
    ("stock", "lithops"): (3.4e-2, "forecasts"),
    ("airbnb", "fast"): (1.15e-4, "reviews"),
    ("primes", "fast"): (2.7e-9, "integers"),
    ("ml", "fast"): (3.6e-4, "samples"),
    ("wordcount", "fast"): (6.0e-7, "words"),
    ("video", "fast"): (2.9e-2, "videos"),
}

#: driver memory per task: its record, the framework's handles and the store row (measured
#: by ``experiments/bench_speed.py --memory``: ≈ 10–11.5 kB per Ray task at 10,000 and
#: 100,000 tasks, growing linearly)
TASK_BOOKKEEPING_BYTES = 12288


def estimated_cpu_s(workload: str, size: Any, params: Mapping[str, Any]) -> float | None:
    """CPU-seconds a built-in workload needs at ``size`` (None when unknown).

    >>> round(estimated_cpu_s("pi", 5e8, {}), 1)
    2.7
    >>> estimated_cpu_s("my.module:JOB", 10, {}) is None
    True
    """
    flavour = str(params.get("flavour", "fast"))
    if workload == "sleep":
        return float(size)
    cost = CPU_S_PER_UNIT.get((workload, flavour))
    if cost is None or not isinstance(size, int | float):
        return None
    units = float(size) ** 2 if workload == "mandelbrot" else float(size)
    return cost[0] * units


def bookkeeping_bytes(total_tasks: int) -> int:
    """Driver memory the run's per-task bookkeeping needs."""
    return total_tasks * TASK_BOOKKEEPING_BYTES


def check_records_fit(n_tasks: int) -> None:
    """Refuse, before any work, more tasks than this machine's free memory can track: the
    per-task records must fit in half the free memory (never grow until the kernel kills
    the process). Every command that runs tasks applies this one rule."""
    import psutil

    from rayjoule.core.errors import ConfigError

    available = psutil.virtual_memory().available
    need = bookkeeping_bytes(n_tasks)
    if need > available // 2:
        raise ConfigError(
            f"{n_tasks} tasks need about {need / 2**30:.1f} GiB for their records "
            f"({TASK_BOOKKEEPING_BYTES} B each) but only {available / 2**30:.1f} GiB is free; "
            "use fewer tasks")
