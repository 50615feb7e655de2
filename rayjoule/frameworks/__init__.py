"""How a job's stages get executed: natively, as Ray tasks/actors, or as Lithops functions.

Every executor runs the same stage functions through
:func:`rayjoule.frameworks.task.run_task`, so the per-task records (host, pid, start,
end, CPU time, stage) mean the same thing on every framework.
"""

from __future__ import annotations

from rayjoule.core.config import RunConfig
from rayjoule.core.errors import ConfigError
from rayjoule.frameworks.base import Executor


def executor_for(config: RunConfig) -> Executor:
    """The executor for ``config.framework`` (imports the framework lazily)."""
    if config.framework == "native":
        from rayjoule.frameworks.native_executor import NativeExecutor

        return NativeExecutor(config)
    if config.framework == "ray":
        from rayjoule.frameworks.ray_executor import RayExecutor

        return RayExecutor(config)
    if config.framework == "lithops":
        from rayjoule.frameworks.lithops_executor import LithopsExecutor

        return LithopsExecutor(config)
    raise ConfigError(f"unknown framework {config.framework!r}")


__all__ = ["Executor", "executor_for"]
