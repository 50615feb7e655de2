"""rayjoule: which way of running a parallel Python job costs the fewest joules?

``import rayjoule`` is cheap: Ray, Optuna and Lithops are imported only when a
run needs them.

>>> import rayjoule
>>> cfg = rayjoule.RunConfig(workload="pi", size=100_000, framework="native")
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from rayjoule.core.config import RunConfig
from rayjoule.core.errors import ConfigError, RayjouleError, RunFailed
from rayjoule.core.result import Energy, HostEnergy, MeterLabel, RunResult, TaskRecord

try:
    __version__ = version("rayjoule")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"


def run(config: RunConfig, **kwargs: Any) -> RunResult:
    """One metered run; see :func:`rayjoule.runs.session.run`."""
    from rayjoule.runs.session import run as _run

    return _run(config, **kwargs)


#: what ``rayjoule.<name>`` imports on first use (keeps ``import rayjoule`` free of Ray)
_LAZY = {
    "measure": "rayjoule.runs.measured_block",
    "measured": "rayjoule.runs.measured_block",
    "Measurement": "rayjoule.runs.measured_block",
    "wait_all": "rayjoule.runs.measured_block",
    "tune_program": "rayjoule.tuning.program_tuner",
    "ProgramTuneReport": "rayjoule.tuning.program_tuner",
}


def __getattr__(name: str) -> Any:
    """``rayjoule.measure`` / ``measured`` / ``wait_all`` / ``tune_program``: imported when
    first used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rayjoule' has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "Energy",
    "HostEnergy",
    "Measurement",
    "MeterLabel",
    "ProgramTuneReport",
    "RayjouleError",
    "RunConfig",
    "RunFailed",
    "RunResult",
    "TaskRecord",
    "__version__",
    "measure",
    "measured",
    "run",
    "tune_program",
    "wait_all",
]
