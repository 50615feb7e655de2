"""The idle control: each task sleeps ``size / tasks`` seconds and does nothing else.

Its energy is what a framework and an idle machine cost while no work runs, which is what
attribution must not blame on a workload. ``size`` may be 0 (pure framework overhead).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from workloads._base import ParamValue, Size, Workload


@dataclass(frozen=True)
class Chunk:
    """Sleep ``seconds``; ``total`` is the whole run's sleep, carried for the summary."""

    seconds: float
    total: float


def partition(tasks: int, size: Size, seed: int, params: dict[str, ParamValue]) -> list[Chunk]:
    """Every task gets an equal share of the sleep."""
    return [Chunk(float(size) / tasks, float(size)) for _ in range(tasks)]


def map(chunk: Chunk) -> float:
    """Sleep, then hand back the run's total so the summary never depends on ``tasks``.

    At size 0 the task does nothing at all: ``time.sleep(0)`` is still a system call that
    yields the CPU (≈ 70 µs on a VM), which would be counted as the framework's cost.
    """
    if chunk.seconds > 0:
        time.sleep(chunk.seconds)
    return chunk.total


def reduce(partials: list[float]) -> float:
    """All partials carry the same total."""
    return partials[0]


def summary(result: float) -> dict[str, Any]:
    """``seconds`` = the requested total sleep."""
    return {"seconds": float(result)}


WORKLOAD = Workload(
    name="sleep",
    description="Idle control: tasks sleep, so only framework and idle power remain",
    size_meaning="total seconds of sleep across tasks",
    default_size=4.0,
    params=(),
    partition=partition,
    map=map,
    reduce=reduce,
    summary=summary,
    size_type=float,
    min_size=0.0,
)
