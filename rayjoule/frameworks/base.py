"""The executor contract every framework implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from rayjoule.core.config import RunConfig
from rayjoule.core.result import TaskRecord

#: called with each finished task's record, for progress bars
OnTaskDone = Callable[[TaskRecord], None]


class Executor(ABC):
    """Runs a workload's chunks on one framework.

    Lifecycle: ``open()`` once (start or connect to the framework), ``map()``
    once per repeat, ``close()`` at the end. ``map`` returns the partials in
    chunk order and one TaskRecord per chunk; a chunk that raises or a worker
    that dies ends ``map`` with :class:`rayjoule.core.errors.RunFailed`.
    """

    name: str = ""

    def __init__(self, config: RunConfig) -> None:
        self.config = config

    def open(self) -> None:  # noqa: B027 - optional hook
        """Start or connect to the framework (may be slow; not metered)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what ``open`` started."""

    @abstractmethod
    def map(
        self, workload: Any, chunks: Sequence[Any], on_done: OnTaskDone | None = None
    ) -> tuple[list[Any], list[TaskRecord]]:
        """Run ``workload.map`` on every chunk; return (partials, task records)."""

    def __enter__(self) -> Executor:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
