"""mandelbrot: the vectorised kernel against a brute-force pure-Python reference."""

from __future__ import annotations

import numpy as np
import pytest

import workloads
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
    assert summary == {"width": 23, "height": 23, "max_iter": 80,
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
