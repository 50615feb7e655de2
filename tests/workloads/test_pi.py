"""pi: 4 * inside / points, with identical numpy and per-point Python kernels."""

from __future__ import annotations

import math

import pytest

import workloads
from workloads import pi


def test_estimate_close_to_pi():
    summary = workloads.execute("pi", size=2_000_000, tasks=4)
    assert summary["points"] == 2_000_000
    standard_error = 4 * math.sqrt(math.pi / 4 * (1 - math.pi / 4) / 2_000_000)
    assert summary["estimate"] == pytest.approx(math.pi, abs=5 * standard_error)


def test_python_kernel_counts_the_same_points():
    numpy = workloads.execute("pi", size=400_000, tasks=3, seed=5, kernel="numpy")
    python = workloads.execute("pi", size=400_000, tasks=2, seed=5, kernel="python")
    assert numpy == python


def test_estimate_is_four_times_inside_share():
    chunk = pi.partition(1, 1000, 0, {"kernel": "numpy"})[0]
    partial = pi.map(chunk)
    assert pi.summary(partial) == {"estimate": 4 * partial.inside / 1000, "points": 1000}


def test_python_kernel_has_smaller_default_size():
    wl = workloads.get("pi")
    assert wl.validate(None, 1, {"kernel": "python"})[0] == pi.PYTHON_DEFAULT_SIZE
    assert wl.validate(None, 1, {})[0] == wl.default_size
    assert wl.validate(7, 1, {"kernel": "python"})[0] == 7
