"""Mandelbrot escape counts over a square image; tasks get contiguous blocks of rows.

Pixel (i, j) takes ``c = x[j] + 1j * y[i]`` with ``x = linspace(x0, x1, width)`` and
``y = linspace(y0, y1, height)``; ``z_0 = 0``, ``z_k = z_{k-1}**2 + c``. Its count is the
number of k in 1..max_iter with ``|z_k| <= 2``, i.e. (first k with ``|z_k| > 2``) - 1, or
max_iter if it never escapes (once ``|z| > 2`` it never comes back for these c). The kernel
works on real and imaginary parts with the same IEEE operations as Python's complex
``z*z + c``, tests ``|z|^2 > 4``, and iterates only the points still inside, so escaped
points never overflow. Rows are independent, so the total is exact for any grouping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads._base import Param, ParamValue, Size, Workload, WorkloadError, split_even

BATCH_PIXELS = 1 << 14
"""Pixels iterated together: big enough to amortise numpy calls, small enough for L2."""


@dataclass(frozen=True)
class Chunk:
    """Rows ``[row0, row1)`` of the image; empty when ``row0 == row1``."""

    size: int
    row0: int
    row1: int
    max_iter: int
    region: tuple[float, float, float, float]


@dataclass(frozen=True)
class Partial:
    """Escape counts summed over some rows, with the image shape the summary reports."""

    size: int
    max_iter: int
    iterations: int


def partition(tasks: int, size: Size, seed: int, params: dict[str, ParamValue]) -> list[Chunk]:
    """Give each task a contiguous block of rows (the seed plays no part: nothing is random)."""
    region = (float(params["x0"]), float(params["x1"]), float(params["y0"]), float(params["y1"]))
    return [
        Chunk(int(size), row0, row1, int(params["max_iter"]), region)
        for row0, row1 in split_even(int(size), tasks)
    ]


def map(chunk: Chunk) -> Partial:
    """Sum of escape counts over the chunk's rows (coordinates come from the full axes).

    Rows go through the kernel a few at a time (about :data:`BATCH_PIXELS` pixels), which
    bounds memory for big images and keeps the arrays cache-sized.
    """
    x0, x1, y0, y1 = chunk.region
    x = np.linspace(x0, x1, chunk.size)
    y = np.linspace(y0, y1, chunk.size)[chunk.row0 : chunk.row1]
    step = max(1, BATCH_PIXELS // x.size)
    total = 0
    for first in range(0, y.size, step):
        rows = y[first : first + step]
        total += escape_total(np.tile(x, rows.size), np.repeat(rows, x.size), chunk.max_iter)
    return Partial(chunk.size, chunk.max_iter, total)


def escape_total(cr: np.ndarray, ci: np.ndarray, max_iter: int) -> int:
    """Sum over points c = cr + i*ci of their escape counts, iterating only live points."""
    zr = np.zeros_like(cr)
    zi = np.zeros_like(ci)
    total = 0
    for k in range(1, max_iter + 1):
        zr2 = zr * zr
        zi2 = zi * zi
        zi = (zr + zr) * zi + ci
        zr = zr2 - zi2 + cr
        escaped = zr * zr + zi * zi > 4.0
        n_escaped = int(np.count_nonzero(escaped))
        if n_escaped:
            total += n_escaped * (k - 1)
            keep = ~escaped
            zr, zi, cr, ci = zr[keep], zi[keep], cr[keep], ci[keep]
            if zr.size == 0:
                return total
    return total + zr.size * max_iter


def reduce(partials: list[Partial]) -> Partial:
    """Exact integer sum; every partial carries the same image shape."""
    first = partials[0]
    return Partial(first.size, first.max_iter, sum(p.iterations for p in partials))


def summary(result: Partial) -> dict[str, Any]:
    """Image shape, iteration cap and the total escape count."""
    return {
        "width": result.size,
        "height": result.size,
        "max_iter": result.max_iter,
        "iterations_total": result.iterations,
    }


def prepare(size: Size | None, params: dict[str, ParamValue]) -> Size:
    """The region must have positive width and height."""
    if not float(params["x0"]) < float(params["x1"]):
        raise WorkloadError("parameter 'x0' must be less than parameter 'x1'")
    if not float(params["y0"]) < float(params["y1"]):
        raise WorkloadError("parameter 'y0' must be less than parameter 'y1'")
    return WORKLOAD.default_size if size is None else size


WORKLOAD = Workload(
    name="mandelbrot",
    description="Mandelbrot escape counts of a square image, rows split over tasks",
    size_meaning="image width = height in pixels",
    default_size=3072,
    params=(
        Param("max_iter", int, 300, "iterations before a point counts as inside", minimum=1),
        Param("x0", float, -2.0, "left edge of the region (real part)"),
        Param("x1", float, 1.0, "right edge of the region (real part)"),
        Param("y0", float, -1.5, "bottom edge of the region (imaginary part)"),
        Param("y1", float, 1.5, "top edge of the region (imaginary part)"),
    ),
    partition=partition,
    map=map,
    reduce=reduce,
    summary=summary,
    prepare=prepare,
)
