"""Mandelbrot escape counts over a square image; tasks get contiguous blocks of rows (or tiles).

With ``flavour=fast``, pixel (i, j) takes ``c = x[j] + 1j * y[i]`` with ``x = linspace(x0,
x1, width)`` and ``y = linspace(y0, y1, height)``; ``z_0 = 0``, ``z_k = z_{k-1}**2 + c``.
Its count is the number of k in 1..max_iter with ``|z_k| <= 2``, i.e. (first k with
``|z_k| > 2``) - 1, or max_iter if it never escapes (once ``|z| > 2`` it never comes back
for these c). The kernel works on real and imaginary parts with the same IEEE operations as
Python's complex ``z*z + c``, tests ``|z|^2 > 4``, and iterates only the points still
inside, so escaped points never overflow. Rows are independent, so the total is exact for
any grouping.

Two flavours (parameter ``flavour``):

``fast`` (default)
    One square image (``size`` = width = height, default 3072) of the region and
    ``max_iter`` given by the parameters, rows split over tasks, float64 throughout.

``lithops``
    The seven-frame zoom of the Lithops Mandelbrot example as the thesis ran it
    (``lithops-cloud/applications``, ``mandelbrot/example_mandelbrot.ipynb``): ``width =
    height = 768``, ``concurrency = 16`` square tiles (4 x 4, 192 x 192 pixels) per frame,
    centre ``(-0.7436438870, 0.1318259042)``, half-widths ``delta`` = 1, 0.4, then times
    0.4 per frame, and ``maxiter`` = 300, 300, 330, 360, 400, 440, 500: 7 x 16 = 112 calls,
    one per tile (see :mod:`workloads._thesis_mandelbrot`). A pixel counts the last of the
    ``maxiter + 1`` passes at which ``|z|^2 < 4`` in float32, as the original did. ``size``
    is the width (a multiple of 4); the region and ``max_iter`` parameters do not apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads import _thesis_mandelbrot as zoom
from workloads._base import Param, ParamValue, Size, Workload, WorkloadError, split_even
from workloads._thesis_flavour import LITHOPS, check_unused, flavour_param

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
    """Escape counts summed over some rows (or tiles), with the shape the summary reports."""

    size: int
    max_iter: int
    iterations: int
    flavour: str = "fast"
    by_frame: tuple[int, ...] = ()


def partition(tasks: int, size: Size, seed: int,
              params: dict[str, ParamValue]) -> list[Chunk] | list[zoom.TileChunk]:
    """Give each task a contiguous block of rows, or of zoom tiles with flavour=lithops.

    The seed plays no part: nothing is random.
    """
    if params["flavour"] == LITHOPS:
        return zoom.partition(tasks, int(size))
    region = (float(params["x0"]), float(params["x1"]), float(params["y0"]), float(params["y1"]))
    return [
        Chunk(int(size), row0, row1, int(params["max_iter"]), region)
        for row0, row1 in split_even(int(size), tasks)
    ]


def map(chunk: Chunk | zoom.TileChunk) -> Partial:
    """Sum of escape counts over the chunk's rows (coordinates come from the full axes).

    Rows go through the kernel a few at a time (about :data:`BATCH_PIXELS` pixels), which
    bounds memory for big images and keeps the arrays cache-sized. Tile chunks
    (flavour=lithops) run the original's per-tile kernel, one tile per original call.
    """
    if isinstance(chunk, zoom.TileChunk):
        by_frame = zoom.map_tiles(chunk)
        return Partial(chunk.size, max(zoom.MAX_ITERS), sum(by_frame), LITHOPS, by_frame)
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
    """Exact integer sums (per frame with lithops); every partial carries the same shape."""
    first = partials[0]
    by_frame = tuple(sum(frame) for frame in zip(*(p.by_frame for p in partials), strict=True))
    return Partial(first.size, first.max_iter, sum(p.iterations for p in partials),
                   first.flavour, by_frame)


def summary(result: Partial) -> dict[str, Any]:
    """Image shape, iteration cap and the total escape count (lithops: of all seven frames)."""
    if result.flavour == LITHOPS:
        return zoom.summary(result.size, result.by_frame)
    return {
        "flavour": result.flavour,
        "width": result.size,
        "height": result.size,
        "max_iter": result.max_iter,
        "iterations_total": result.iterations,
    }


def prepare(size: Size | None, params: dict[str, ParamValue]) -> Size:
    """The region must have positive width and height; lithops fixes its own frames."""
    if params["flavour"] == LITHOPS:
        check_unused(WORKLOAD, params, ("max_iter", "x0", "x1", "y0", "y1"))
        return zoom.check_width(zoom.WIDTH if size is None else int(size))
    if not float(params["x0"]) < float(params["x1"]):
        raise WorkloadError("parameter 'x0' must be less than parameter 'x1'")
    if not float(params["y0"]) < float(params["y1"]):
        raise WorkloadError("parameter 'y0' must be less than parameter 'y1'")
    return WORKLOAD.default_size if size is None else size


WORKLOAD = Workload(
    name="mandelbrot",
    description="Mandelbrot escape counts of a square image, rows split over tasks",
    size_meaning=("image width = height in pixels (default 3072; with flavour=lithops 768, "
                  "a multiple of 4)"),
    default_size=3072,
    params=(
        Param("max_iter", int, 300, "iterations before a point counts as inside", minimum=1),
        Param("x0", float, -2.0, "left edge of the region (real part)"),
        Param("x1", float, 1.0, "right edge of the region (real part)"),
        Param("y0", float, -1.5, "bottom edge of the region (imaginary part)"),
        Param("y1", float, 1.5, "top edge of the region (imaginary part)"),
        flavour_param("lithops-cloud/applications mandelbrot/example_mandelbrot.ipynb: seven "
                      "zoom frames of 16 square complex64 tiles, 112 calls; max_iter and the "
                      "region do not apply"),
    ),
    partition=partition,
    map=map,
    reduce=reduce,
    summary=summary,
    prepare=prepare,
)
