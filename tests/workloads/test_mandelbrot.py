"""mandelbrot: both flavours' kernels against brute-force pure-Python references."""

from __future__ import annotations

import numpy as np
import pytest

import workloads
from workloads import _thesis_mandelbrot as zoom
from workloads.mandelbrot import escape_total


def brute_force(size, max_iter, x0, x1, y0, y1):
    """Count, per pixel, the k in 1..max_iter with |z_k| <= 2 (stop at the first escape).

    The axes are ``numpy.linspace`` by definition; everything else is plain Python complex.
    """
    xs = np.linspace(x0, x1, size).tolist()
    ys = np.linspace(y0, y1, size).tolist()
    total = 0
    for y in ys:
        for x in xs:
            c, z = complex(x, y), 0j
            for _ in range(max_iter):
                z = z * z + c
                if abs(z) > 2:
                    break
                total += 1
    return total


@pytest.mark.parametrize(
    "region",
    [(-2.0, 1.0, -1.5, 1.5), (-0.8, -0.7, 0.05, 0.15), (-2.5, 0.5, -0.25, 1.25)],
)
def test_matches_brute_force(region):
    x0, x1, y0, y1 = region
    summary = workloads.execute("mandelbrot", size=23, tasks=4, max_iter=80,
                                x0=x0, x1=x1, y0=y0, y1=y1)
    assert summary == {"flavour": "fast", "width": 23, "height": 23, "max_iter": 80,
                       "iterations_total": brute_force(23, 80, x0, x1, y0, y1)}


@pytest.mark.parametrize(
    ("c", "count"),
    [
        (0.0, 50),    # z stays 0: never escapes
        (-2.0, 50),   # z = -2, 2, 2, ...: |z| = 2 counts as inside
        (1.0, 2),     # z = 1, 2, 5: |z_3| > 2
        (2.0, 1),     # z = 2, 6
        (3.0, 0),     # |z_1| = 3 escapes at once
        (0.25, 50),   # the cusp: converges to 1/2
    ],
)
def test_escape_count_definition(c, count):
    assert escape_total(np.array([c]), np.array([0.0]), 50) == count


def test_no_overflow_warnings():
    with np.errstate(all="raise"):
        workloads.execute("mandelbrot", size=32, max_iter=500, x0=-20.0, x1=20.0,
                          y0=-20.0, y1=20.0)


# flavour=lithops: the original's seven-frame zoom of 4 x 4 complex64 tiles


def brute_force_tile(limit, maxiter, n):
    """One tile pixel by pixel with float32 scalars: the original's counts, spelt out.

    ``z`` is complex64 (two float32), ``c`` complex128 from ``linspace`` over the tile's own
    limits; ``z**2`` is rounded to float32 before ``c`` is added in float64, and the sum is
    rounded back to float32. A pixel counts the last pass ``it`` with ``|z_it|^2 < 4``.
    """
    f32 = np.float32
    total = 0
    for ci in np.linspace(limit[2], limit[3], n).tolist():
        for cr in np.linspace(limit[0], limit[1], n).tolist():
            zr, zi, count = f32(0), f32(0), 0
            for it in range(maxiter + 1):
                if not zr * zr + zi * zi < 4.0:
                    break
                count = it
                ab = zr * zi
                zr, zi = (f32(zr * zr - zi * zi) + np.float64(cr),
                          f32(ab + ab) + np.float64(ci))
                zr, zi = f32(zr), f32(zi)
            total += count
    return total


def test_lithops_zoom_series_is_the_notebooks():
    assert zoom.WIDTH == 768 and zoom.CONCURRENCY == 16 and zoom.CALLS == 112
    assert zoom.MAX_ITERS == (300, 300, 330, 360, 400, 440, 500)
    assert [d for d, _ in zoom.FRAMES] == pytest.approx([1, 0.4, 0.16, 0.064, 0.0256, 0.01024,
                                                         0.004096])
    wl = workloads.get("mandelbrot")
    size, params = wl.validate(None, 112, {"flavour": "lithops"})
    assert size == 768
    assert [c.stop - c.first for c in wl.partition(112, size, 0, params)] == [1] * 112
    x0, _, y0, _ = zoom.tile_limits(6, 0)
    _, x1, _, y1 = zoom.tile_limits(6, 15)
    assert (x0 + x1) / 2 == pytest.approx(zoom.XTARGET) and x1 - x0 == pytest.approx(2 * 0.004096)
    assert (y0 + y1) / 2 == pytest.approx(zoom.YTARGET) and y1 - y0 == pytest.approx(2 * 0.004096)


def test_lithops_matches_brute_force_per_frame():
    size = 8  # 16 tiles of 2 x 2 pixels per frame
    summary = workloads.execute("mandelbrot", size=size, tasks=5, flavour="lithops")
    expected = [
        sum(brute_force_tile(zoom.tile_limits(frame, tile), maxiter, size // 4)
            for tile in range(16))
        for frame, (_, maxiter) in enumerate(zoom.FRAMES)
    ]
    assert summary["iterations_by_frame"] == ",".join(map(str, expected))
    assert summary["iterations_total"] == sum(expected)
    assert summary["max_iter_schedule"] == "300,300,330,360,400,440,500"


def test_lithops_tile_counts_match_brute_force():
    limit = zoom.tile_limits(3, 5)
    assert int(zoom.mandelbrot_chunk(limit, 360, 6).sum()) == brute_force_tile(limit, 360, 6)


def test_lithops_refuses_region_parameters_and_odd_widths():
    wl = workloads.get("mandelbrot")
    with pytest.raises(workloads.WorkloadError, match="max_iter"):
        wl.validate(16, 1, {"flavour": "lithops", "max_iter": 100})
    with pytest.raises(workloads.WorkloadError, match="x0"):
        wl.validate(16, 1, {"flavour": "lithops", "x0": -1.0})
    with pytest.raises(workloads.WorkloadError, match="multiple of 4"):
        wl.validate(18, 1, {"flavour": "lithops"})
