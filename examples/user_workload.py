"""A workload of your own that rayjoule can run, compare and tune on every framework.

The longest Collatz chain below a limit (Project Euler 14): the numbers are cut into
fixed blocks, each task walks its blocks with numpy, and ``reduce`` keeps the longest
chain (the smallest start on ties), so the summary is the same for any number of tasks
on any framework — the workload contract (``workloads.Workload``). ``map`` and friends
are module-level functions so Ray, Lithops and process pools can ship them by reference.

Run from the repository root (so ``examples`` is importable)::

    python -m rayjoule.run  --workload examples.user_workload:WORKLOAD --framework ray --tasks 4
    python -m rayjoule.tune --workload examples.user_workload:WORKLOAD --trials 3 --meter tdp
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads import ParamValue, Workload

#: numbers per block: the unit of work, so results do not depend on the number of tasks
BLOCK = 50_000


@dataclass(frozen=True)
class Chunk:
    """Blocks ``[first, stop)`` of the starts ``1 .. limit - 1``."""

    limit: int
    first: int
    stop: int


@dataclass(frozen=True)
class Longest:
    start: int
    steps: int


def partition(tasks: int, size: Any, seed: int, params: dict[str, ParamValue]) -> list[Chunk]:
    """Exactly ``tasks`` chunks of whole blocks (some empty when there are fewer blocks)."""
    limit = int(size)
    blocks = -(-limit // BLOCK)
    bounds = np.linspace(0, blocks, tasks + 1).round().astype(int)
    return [Chunk(limit, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def chain_steps(starts: np.ndarray, cap: int) -> np.ndarray:
    """Steps to reach 1 from each start (vectorised: all chains advance together)."""
    current = starts.astype(np.int64)
    steps = np.zeros(starts.size, dtype=np.int64)
    alive = current > 1
    while alive.any() and steps.max() < cap:
        c = current[alive]
        current[alive] = np.where(c % 2 == 0, c // 2, 3 * c + 1)
        steps[alive] += 1
        alive = current > 1
    return steps


def map(chunk: Chunk) -> Longest:
    """The longest chain starting in the chunk's blocks."""
    best = Longest(0, -1)
    for b in range(chunk.first, chunk.stop):
        starts = np.arange(max(b * BLOCK, 1), min((b + 1) * BLOCK, chunk.limit))
        if starts.size == 0:
            continue
        steps = chain_steps(starts, cap=10_000)
        i = int(np.argmax(steps))  # the first maximum: the smallest start on ties
        if steps[i] > best.steps:
            best = Longest(int(starts[i]), int(steps[i]))
    return best


def reduce(partials: list[Longest]) -> Longest:
    return max(partials, key=lambda p: (p.steps, -p.start))


def summary(result: Longest) -> dict[str, Any]:
    return {"longest_start": result.start, "steps": result.steps}


WORKLOAD = Workload(
    name="collatz",
    description="Longest Collatz chain below a limit (numpy, blocks of 50,000 starts)",
    size_meaning="exclusive upper limit of the starting numbers",
    default_size=1_000_000,
    params=(),
    partition=partition,
    map=map,
    reduce=reduce,
    summary=summary,
    min_size=2,
)
