"""Monte Carlo estimate of pi: the share of uniform points in the unit square inside the circle.

Two flavours (parameter ``flavour``):

``fast`` (default)
    Both kernels draw exactly the same points (blocks of :data:`BLOCK` points from
    ``default_rng([seed, block])``, x then y) and apply the same IEEE test ``x*x + y*y <= 1``,
    so they count the same points; ``kernel=python`` only walks them one by one, which makes
    it a CPU-bound pure-Python load (about 20x slower than ``kernel=numpy``).

``lithops``
    The Lithops pi example as the thesis ran it (``lithops-cloud/applications``,
    ``montecarlo/pi_estimation/pi_estimation.ipynb``): ``MAP_INSTANCES = 100`` calls of
    ``randomize_per_map = 10_000_000`` points, 10**9 points in all, each point drawn in a
    pure-Python loop by ``EstimatePI.predicate`` (``x = random(); y = random();
    (x ** 2) + (y ** 2) <= 1``, counted with ``in_circle += self.predicate()``). One block
    of ``points_per_call`` points is one original call. What differs: the original drew
    from the ``random`` module's shared, unseeded generator; here each block has its own
    ``random.Random`` (the same Mersenne Twister) seeded from ``(seed, block)``, so the
    result is reproducible and independent of ``tasks``. The original's reduce averaged the
    per-call fractions (``4 * mean(in_circle / randomize_per_map)``); here ``estimate`` is
    ``4 * inside / points`` from exact integer counts, which is the same number for equal
    calls up to float rounding and exact for a short last call.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads._base import Param, ParamValue, Size, Workload, block_items, split_blocks
from workloads._thesis_flavour import LITHOPS, block_seed, check_unused, flavour_param

BLOCK = 1 << 18
"""Points per block (fast): ~1900 blocks at the default size to spread over tasks."""

PYTHON_DEFAULT_SIZE = 3 * 10**7
"""Default size with ``kernel=python``, which runs ~20x slower than numpy."""

LITHOPS_POINTS_PER_CALL = 10**7
"""The original's ``randomize_per_map``: points per call."""

LITHOPS_DEFAULT_SIZE = 100 * LITHOPS_POINTS_PER_CALL
"""The original's ``MAP_INSTANCES * randomize_per_map`` = 10**9 points."""


@dataclass(frozen=True)
class Chunk:
    """A contiguous run of point blocks ``[first, stop)``; empty when ``first == stop``."""

    seed: int
    size: int
    first: int
    stop: int
    kernel: str
    flavour: str = "fast"
    block: int = BLOCK


@dataclass(frozen=True)
class Partial:
    """Points inside the quarter circle, points drawn and blocks (calls) run: exact integers."""

    inside: int
    points: int
    flavour: str = "fast"
    calls: int = 0


def partition(tasks: int, size: Size, seed: int, params: dict[str, ParamValue]) -> list[Chunk]:
    """Give each task a contiguous run of blocks (lithops: one block = one original call)."""
    flavour = str(params["flavour"])
    block = int(params["points_per_call"]) if flavour == LITHOPS else BLOCK
    return [
        Chunk(seed, int(size), first, stop, str(params["kernel"]), flavour, block)
        for first, stop in split_blocks(int(size), block, tasks)
    ]


def map(chunk: Chunk) -> Partial:
    """Count the points of the chunk's blocks that fall inside the circle."""
    inside = points = 0
    for b in range(chunk.first, chunk.stop):
        n = block_items(b, chunk.block, chunk.size)
        if chunk.flavour == LITHOPS:
            inside += EstimatePI(random.Random(block_seed(chunk.seed, b))).randomize_points(n)
        else:
            rng = np.random.default_rng([chunk.seed, b])
            x = rng.random(n)
            y = rng.random(n)
            inside += _count_numpy(x, y) if chunk.kernel == "numpy" else _count_python(x, y)
        points += n
    return Partial(inside, points, chunk.flavour, chunk.stop - chunk.first)


def _count_numpy(x: np.ndarray, y: np.ndarray) -> int:
    """Vectorised count, in place to keep memory at two arrays."""
    np.multiply(x, x, out=x)
    np.multiply(y, y, out=y)
    np.add(x, y, out=x)
    return int(np.count_nonzero(x <= 1.0))


def _count_python(x: np.ndarray, y: np.ndarray) -> int:
    """A per-point loop over the same coordinates as the numpy kernel."""
    inside = 0
    for a, b in zip(x.tolist(), y.tolist(), strict=True):
        if a * a + b * b <= 1.0:
            inside += 1
    return inside


class EstimatePI:
    """The original ``EstimatePI`` loop, drawing from a seeded ``random.Random``.

    >>> EstimatePI(random.Random(1)).randomize_points(1000)
    778
    """

    def __init__(self, rng: random.Random) -> None:
        self.random = rng.random

    def predicate(self) -> bool:
        x = self.random()
        y = self.random()
        return (x ** 2) + (y ** 2) <= 1

    def randomize_points(self, n: int) -> int:
        """Points inside the circle out of ``n`` (the original returned their share)."""
        in_circle = 0
        for _ in range(n):
            in_circle += self.predicate()
        return in_circle


def reduce(partials: list[Partial]) -> Partial:
    """Sum the integer counts (order does not matter)."""
    return Partial(sum(p.inside for p in partials), sum(p.points for p in partials),
                   partials[0].flavour, sum(p.calls for p in partials))


def summary(result: Partial) -> dict[str, Any]:
    """``estimate`` = 4 * inside / points; lithops also reports its ``calls``."""
    estimate = 4.0 * result.inside / result.points if result.points else 0.0
    out: dict[str, Any] = {"flavour": result.flavour, "estimate": estimate,
                           "points": result.points}
    if result.flavour == LITHOPS:
        out["calls"] = result.calls
    return out


def prepare(size: Size | None, params: dict[str, ParamValue]) -> Size:
    """Each flavour and kernel has its own default size; unused parameters must stay default."""
    if params["flavour"] == LITHOPS:
        check_unused(WORKLOAD, params, ("kernel",))
        return LITHOPS_DEFAULT_SIZE if size is None else size
    check_unused(WORKLOAD, params, ("points_per_call",))
    if size is not None:
        return size
    return PYTHON_DEFAULT_SIZE if params["kernel"] == "python" else WORKLOAD.default_size


WORKLOAD = Workload(
    name="pi",
    description="Monte Carlo estimate of pi from uniform points in the unit square",
    size_meaning=(f"total random points (default {5 * 10**8:.0e}; with kernel=python "
                  f"{PYTHON_DEFAULT_SIZE:.0e}; with flavour=lithops {LITHOPS_DEFAULT_SIZE:.0e}, "
                  f"the original's 100 calls of {LITHOPS_POINTS_PER_CALL:.0e})"),
    default_size=5 * 10**8,
    params=(
        Param("kernel", str, "numpy", "numpy (vectorised) or python (per-point loop); "
              "flavour=fast only", choices=("numpy", "python")),
        flavour_param("lithops-cloud/applications montecarlo/pi_estimation: 100 calls of "
                      "10**7 points, each drawn with random.random() in a pure-Python loop, "
                      "seeded per call here"),
        Param("points_per_call", int, LITHOPS_POINTS_PER_CALL,
              "points per call with flavour=lithops (the original's randomize_per_map)",
              minimum=1),
    ),
    partition=partition,
    map=map,
    reduce=reduce,
    summary=summary,
    prepare=prepare,
)
