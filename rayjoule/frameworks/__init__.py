"""How a job's stages get executed: natively, as Ray tasks/actors, as Lithops functions,
or by any executor registered under the ``rayjoule.frameworks`` entry-point group.

Every executor runs the same stage functions through
:func:`rayjoule.frameworks.task.run_task`, so the per-task records (host, pid, start,
end, CPU time, stage) mean the same thing on every framework. The contract is
:class:`Executor`'s docstring; :mod:`rayjoule.frameworks.registry` finds executors by name.
"""

from __future__ import annotations

from rayjoule.frameworks.base import Executor
from rayjoule.frameworks.registry import executor_class, executor_for

__all__ = ["Executor", "executor_class", "executor_for"]
