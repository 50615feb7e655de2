"""The zoom series of the Lithops Mandelbrot example: seven frames of 4 x 4 complex64 tiles.

Source: ``lithops-cloud/applications``, ``mandelbrot/example_mandelbrot.ipynb``, which the
thesis ran. Its execution cell sets ``width = height = 768``, ``maxiter = 300``,
``concurrency = 16``, ``xtarget = -0.7436438870``, ``ytarget = 0.1318259042`` and renders
seven frames around that centre with half-width ``delta``: 1, then 0.4, then ``delta *=
0.4`` five times, with ``maxiter`` 300, 300, +30, +30, +40, +40, then 500.
``parallel_mandelbrot`` cuts each frame into ``sqrt(concurrency)`` x ``sqrt(concurrency)``
square tiles of ``int(width / 4)`` pixels and maps ``mandelbrot_chunk_fn`` over them: one
call per tile, 112 calls in all. The tile kernel (:func:`mandelbrot_chunk`) keeps the
original's algorithm and types: ``c`` is complex128 from ``linspace`` over the tile's own
limits (adjacent tiles share their edge coordinates, as in the original), ``z`` is
complex64, the escape test ``z.real**2 + z.imag**2 < 4`` is float32, the output float64, and
every one of the ``maxiter + 1`` passes updates the points still inside through boolean
masks over the whole tile.

What differs: the original squared ``z`` with numpy's complex64 ``**2``, whose SIMD loop may
fuse the real part's multiply and subtract (an FMA) on some CPUs and not on others; here the
square is spelt out in float32 (``re = a*a - b*b``, ``im = a*b + a*b``), each operation
rounded on its own, so the counts are the same on every IEEE-754 machine. They can differ
from the original's by a few chaotic pixels per frame (0.002% of the escape-count sum on
frames 2 and 5 here), and the spelt-out square costs about 30% more CPU per call than
numpy's complex ``**2``. The original returned each tile
(192 x 192 float64) and assembled the images; here a call returns its tile's escape-count
sum, and the summary reports those sums per frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads._base import WorkloadError, split_even

WIDTH = 768
"""The original's ``width = height``: the default ``size`` with flavour=lithops."""

CONCURRENCY = 16
"""The original's ``concurrency``: square tiles per frame."""

BLOCKS_PER_ROW = 4
"""``sqrt(CONCURRENCY)``: tiles per row and per column."""

XTARGET = -0.7436438870
YTARGET = 0.1318259042


def _frames() -> tuple[tuple[float, int], ...]:
    """``(delta, maxiter)`` per frame, computed with the notebook's float operations."""
    delta, maxiter = 1.0, 300
    frames = [(delta, maxiter)]
    delta = 0.4
    frames.append((delta, maxiter))
    for step in (30, 30, 40, 40):
        delta *= 0.4
        maxiter += step
        frames.append((delta, maxiter))
    delta *= 0.4
    frames.append((delta, 500))
    return tuple(frames)


FRAMES = _frames()
MAX_ITERS = tuple(maxiter for _, maxiter in FRAMES)
CALLS = len(FRAMES) * CONCURRENCY


@dataclass(frozen=True)
class TileChunk:
    """Calls ``[first, stop)`` of the series; call ``k`` is tile ``k % 16`` of frame ``k // 16``."""

    size: int
    first: int
    stop: int


def check_width(size: int) -> int:
    """The width must split into 4 x 4 equal square tiles."""
    if size % BLOCKS_PER_ROW:
        raise WorkloadError(f"with flavour=lithops the size (image width) must be a multiple of "
                            f"{BLOCKS_PER_ROW} for {CONCURRENCY} square tiles, not {size}")
    return size


def partition(tasks: int, size: int) -> list[TileChunk]:
    """Give each task a contiguous run of the 112 tile calls."""
    return [TileChunk(size, first, stop) for first, stop in split_even(CALLS, tasks)]


def tile_limits(frame: int, tile: int) -> tuple[float, float, float, float]:
    """``(xmin, xmax, ymin, ymax)`` of one tile, as ``parallel_mandelbrot`` computed them.

    >>> tile_limits(0, 0)[:2] == (XTARGET - 1, XTARGET - 1 + 0.5)
    True
    """
    delta = FRAMES[frame][0]
    xmin, xmax = XTARGET - delta, XTARGET + delta
    ymin, ymax = YTARGET - delta, YTARGET + delta
    y_step = (ymax - ymin) / BLOCKS_PER_ROW
    x_step = (xmax - xmin) / BLOCKS_PER_ROW
    i, j = divmod(tile, BLOCKS_PER_ROW)
    return (xmin + i * x_step, xmin + (i + 1) * x_step,
            ymin + j * y_step, ymin + (j + 1) * y_step)


def mandelbrot_chunk(limit: tuple[float, float, float, float], maxiter: int,
                     mat_block_sz: int) -> np.ndarray:
    """One tile's escape counts (float64, ``[y, x]``), the original's ``mandelbrot_chunk_fn``.

    A pixel's count is the last pass ``it`` in ``0..maxiter`` at which ``|z_it|^2 < 4``.

    >>> int(mandelbrot_chunk((-2.0, 1.0, -1.5, 1.5), 20, 4).sum())
    56
    """
    rx = np.linspace(limit[0], limit[1], mat_block_sz)
    ry = np.linspace(limit[2], limit[3], mat_block_sz)
    c = rx + ry[:, None] * 1j
    output = np.zeros((mat_block_sz, mat_block_sz))
    z = np.zeros((mat_block_sz, mat_block_sz), np.complex64)
    for it in range(maxiter + 1):
        notdone = np.less(z.real * z.real + z.imag * z.imag, 4.0)
        output[notdone] = it
        zn = z[notdone]
        a, b = zn.real, zn.imag  # float32 views
        ab = a * b
        cn = c[notdone]  # complex128: z**2 + c is added in float64, as in the original
        np.add(a * a - b * b, cn.real, out=cn.real)
        np.add(ab + ab, cn.imag, out=cn.imag)
        z[notdone] = cn  # rounded back to complex64
    return output


def map_tiles(chunk: TileChunk) -> tuple[int, ...]:
    """Escape-count sums per frame over the chunk's tile calls (zero for frames it lacks)."""
    totals = [0] * len(FRAMES)
    mat_block_sz = chunk.size // BLOCKS_PER_ROW
    for call in range(chunk.first, chunk.stop):
        frame, tile = divmod(call, CONCURRENCY)
        output = mandelbrot_chunk(tile_limits(frame, tile), FRAMES[frame][1], mat_block_sz)
        totals[frame] += int(output.sum())
    return tuple(totals)


def summary(size: int, by_frame: tuple[int, ...]) -> dict[str, Any]:
    """The series' shape, its max-iteration schedule and escape-count sums (total and per frame)."""
    return {
        "flavour": "lithops",
        "width": size,
        "height": size,
        "frames": len(FRAMES),
        "tiles": CONCURRENCY,
        "calls": CALLS,
        "max_iter": max(MAX_ITERS),
        "max_iter_schedule": ",".join(map(str, MAX_ITERS)),
        "iterations_total": sum(by_frame),
        "iterations_by_frame": ",".join(map(str, by_frame)),
    }
