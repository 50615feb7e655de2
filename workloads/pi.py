"""Monte Carlo estimate of pi: the share of uniform points in the unit square inside the circle.

Both kernels draw exactly the same points (blocks of :data:`BLOCK` points from
``default_rng([seed, block])``, x then y) and apply the same IEEE test ``x*x + y*y <= 1``,
so they count the same points; ``python`` only walks them one by one like the original
per-point loop, which makes it a CPU-bound pure-Python load (about 20x slower).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads._base import Param, ParamValue, Size, Workload, block_items, split_blocks

BLOCK = 1 << 18
"""Points per block: ~1900 blocks at the default size to spread over tasks, big enough for numpy."""

PYTHON_DEFAULT_SIZE = 3 * 10**7
"""Default size with ``kernel=python``, which runs ~20x slower than numpy."""


@dataclass(frozen=True)
class Chunk:
    """A contiguous run of point blocks ``[first, stop)``; empty when ``first == stop``."""

    seed: int
    size: int
    first: int
    stop: int
    kernel: str


@dataclass(frozen=True)
class Partial:
    """Points inside the quarter circle and points drawn, both exact integers."""

    inside: int
    points: int


def partition(tasks: int, size: Size, seed: int, params: dict[str, ParamValue]) -> list[Chunk]:
    """Give each task a contiguous run of blocks."""
    kernel = str(params["kernel"])
    return [
        Chunk(seed, int(size), first, stop, kernel)
        for first, stop in split_blocks(int(size), BLOCK, tasks)
    ]


def map(chunk: Chunk) -> Partial:
    """Count the points of the chunk's blocks that fall inside the circle."""
    inside = points = 0
    for b in range(chunk.first, chunk.stop):
        n = block_items(b, BLOCK, chunk.size)
        rng = np.random.default_rng([chunk.seed, b])
        x = rng.random(n)
        y = rng.random(n)
        inside += _count_numpy(x, y) if chunk.kernel == "numpy" else _count_python(x, y)
        points += n
    return Partial(inside, points)


def _count_numpy(x: np.ndarray, y: np.ndarray) -> int:
    """Vectorised count, in place to keep memory at two arrays."""
    np.multiply(x, x, out=x)
    np.multiply(y, y, out=y)
    np.add(x, y, out=x)
    return int(np.count_nonzero(x <= 1.0))


def _count_python(x: np.ndarray, y: np.ndarray) -> int:
    """The original per-point loop, over the same coordinates as the numpy kernel."""
    inside = 0
    for a, b in zip(x.tolist(), y.tolist(), strict=True):
        if a * a + b * b <= 1.0:
            inside += 1
    return inside


def reduce(partials: list[Partial]) -> Partial:
    """Sum the integer counts (order does not matter)."""
    return Partial(sum(p.inside for p in partials), sum(p.points for p in partials))


def summary(result: Partial) -> dict[str, Any]:
    """``estimate`` = 4 * inside / points."""
    estimate = 4.0 * result.inside / result.points if result.points else 0.0
    return {"estimate": estimate, "points": result.points}


def prepare(size: Size | None, params: dict[str, ParamValue]) -> Size:
    """The python kernel gets a smaller default so both take a few seconds."""
    if size is not None:
        return size
    return PYTHON_DEFAULT_SIZE if params["kernel"] == "python" else WORKLOAD.default_size


WORKLOAD = Workload(
    name="pi",
    description="Monte Carlo estimate of pi from uniform points in the unit square",
    size_meaning=f"total random points (default with kernel=python: {PYTHON_DEFAULT_SIZE:.0e})",
    default_size=5 * 10**8,
    params=(
        Param("kernel", str, "numpy", "numpy (vectorised) or python (per-point loop)",
              choices=("numpy", "python")),
    ),
    partition=partition,
    map=map,
    reduce=reduce,
    summary=summary,
    prepare=prepare,
)
