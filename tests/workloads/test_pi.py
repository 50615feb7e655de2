"""pi: 4 * inside / points; identical numpy and per-point Python kernels; the lithops flavour."""

from __future__ import annotations

import math
import random

import pytest

import workloads
from workloads import pi
from workloads._thesis_flavour import block_seed


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
    _, params = workloads.get("pi").validate(1000, 1, {})
    chunk = pi.partition(1, 1000, 0, params)[0]
    partial = pi.map(chunk)
    assert pi.summary(partial) == {"flavour": "fast", "estimate": 4 * partial.inside / 1000,
                                   "points": 1000}


def test_python_kernel_has_smaller_default_size():
    wl = workloads.get("pi")
    assert wl.validate(None, 1, {"kernel": "python"})[0] == pi.PYTHON_DEFAULT_SIZE
    assert wl.validate(None, 1, {})[0] == wl.default_size
    assert wl.validate(7, 1, {"kernel": "python"})[0] == 7


# flavour=lithops: the original example's per-point loop, 100 calls of 10**7 points


def test_lithops_defaults_are_the_originals_100_calls_of_ten_million():
    wl = workloads.get("pi")
    size, params = wl.validate(None, 100, {"flavour": "lithops"})
    assert size == 10**9 == pi.LITHOPS_DEFAULT_SIZE
    chunks = wl.partition(100, size, 0, params)
    assert [(c.stop - c.first, c.block) for c in chunks] == [(1, 10**7)] * 100


def test_lithops_estimate_close_to_pi():
    summary = workloads.execute("pi", size=400_000, tasks=3, flavour="lithops",
                                points_per_call=100_000)
    assert summary["flavour"] == "lithops" and summary["calls"] == 4
    standard_error = 4 * math.sqrt(math.pi / 4 * (1 - math.pi / 4) / 400_000)
    assert summary["estimate"] == pytest.approx(math.pi, abs=5 * standard_error)


def test_lithops_call_draws_x_then_y_from_its_seeded_generator():
    """Each call is a fresh random.Random seeded from (seed, call); a short last call."""
    seed, per_call, size = 9, 1_000, 2_500
    expected = 0
    for call in range(3):
        draw = random.Random(block_seed(seed, call)).random
        for _ in range(min(per_call, size - call * per_call)):
            x, y = draw(), draw()
            expected += x * x + y * y <= 1
    summary = workloads.execute("pi", size=size, tasks=2, seed=seed, flavour="lithops",
                                points_per_call=per_call)
    assert summary == {"flavour": "lithops", "estimate": 4 * expected / size, "points": size,
                       "calls": 3}


def test_flavour_specific_parameters_are_refused_elsewhere():
    with pytest.raises(workloads.WorkloadError, match="kernel"):
        workloads.get("pi").validate(10, 1, {"flavour": "lithops", "kernel": "python"})
    with pytest.raises(workloads.WorkloadError, match="points_per_call"):
        workloads.get("pi").validate(10, 1, {"points_per_call": 5})
