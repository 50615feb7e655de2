"""rayjoule: which way of running a parallel Python job costs the fewest joules?

``import rayjoule`` is cheap: Ray, Optuna and Lithops are imported only when a
run needs them.

>>> import rayjoule
>>> cfg = rayjoule.RunConfig(workload="pi", size=100_000, framework="native")
"""

from __future__ import annotations

from typing import Any

from rayjoule.config import RunConfig
from rayjoule.errors import ConfigError, RayjouleError, RunFailed
from rayjoule.result import Energy, HostEnergy, MeterLabel, RunResult, TaskRecord


def run(config: RunConfig, **kwargs: Any) -> RunResult:
    """One metered run; see :func:`rayjoule.runner.run`."""
    from rayjoule.runner import run as _run

    return _run(config, **kwargs)


__all__ = [
    "ConfigError",
    "Energy",
    "HostEnergy",
    "MeterLabel",
    "RayjouleError",
    "RunConfig",
    "RunFailed",
    "RunResult",
    "TaskRecord",
    "run",
]
