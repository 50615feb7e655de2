"""stock: the geometric random walk (fast and lithops) against its closed-form statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

import workloads
from workloads import stock

S0, DRIFT, SD = 159.44, -0.00022513546014255100, 0.0121678341323272
N_FORECASTS = 20_000


def lognormal_mean_and_se(days: int) -> tuple[float, float]:
    """E[S_N] = s0 exp(N (drift + sd^2 / 2)) and the standard error of a sample mean."""
    mean = S0 * math.exp(days * (DRIFT + SD**2 / 2))
    variance = mean**2 * (math.exp(days * SD**2) - 1)
    return mean, math.sqrt(variance / N_FORECASTS)


@pytest.fixture(scope="module")
def summary():
    return workloads.execute("stock", size=N_FORECASTS, tasks=3, seed=11)


@pytest.mark.parametrize(("key", "days"), [("mean_day_365", 365), ("mean_day_730", 730)])
def test_mean_matches_closed_form(summary, key, days):
    mean, se = lognormal_mean_and_se(days)
    assert summary[key] == pytest.approx(mean, abs=5 * se)


@pytest.mark.parametrize(("key", "z"), [("p05_day_730", -1.6448536), ("p95_day_730", 1.6448536)])
def test_percentiles_match_lognormal_quantiles(summary, key, z):
    expected = S0 * math.exp(730 * DRIFT + z * SD * math.sqrt(730))
    assert summary[key] == pytest.approx(expected, rel=0.03)


def test_summary_keys(summary):
    assert summary["forecasts"] == N_FORECASTS and summary["days"] == 730
    assert summary["flavour"] == "fast" and "calls" not in summary
    assert summary["p05_day_730"] < summary["mean_day_730"] < summary["p95_day_730"]


def test_without_noise_the_walk_is_the_drift():
    result = workloads.execute("stock", size=5, days=100, std_dev=0, s0=10)
    expected = 10 * math.exp(100 * DRIFT)
    for key in ("mean_day_730", "p05_day_730", "p95_day_730"):
        assert result[key] == pytest.approx(expected, rel=1e-12)


def test_short_horizon_reports_last_day_for_both_means():
    result = workloads.execute("stock", size=50, days=10)
    assert result["days"] == 10
    assert result["mean_day_365"] == result["mean_day_730"]


# flavour=lithops: the original's scalar day loop, norm.ppf of one uniform per day

LITHOPS = {"flavour": "lithops", "forecasts_per_call": 50, "days": 50}


def test_lithops_defaults_are_the_originals_10_calls_of_100_forecasts():
    wl = workloads.get("stock")
    size, params = wl.validate(None, 10, {"flavour": "lithops"})
    assert size == 1000 and params["days"] == 730
    chunks = wl.partition(10, size, 0, params)
    assert [(c.stop - c.first, c.block) for c in chunks] == [(1, 100)] * 10


def test_lithops_mean_matches_closed_form():
    n, days = 400, 50
    result = workloads.execute("stock", size=n, tasks=3, seed=4, **LITHOPS)
    mean = S0 * math.exp(days * (DRIFT + SD**2 / 2))
    se = mean * math.sqrt(math.exp(days * SD**2) - 1) / math.sqrt(n)
    assert result["flavour"] == "lithops" and result["calls"] == 8
    assert result["forecasts"] == n and result["days"] == days
    assert result["mean_day_730"] == pytest.approx(mean, abs=5 * se)


def test_lithops_day_step_is_inverse_normal_cdf_of_one_uniform():
    """A call's prices equal a vectorised reference over the same uniforms, in draw order."""
    from scipy.special import ndtri

    seed, block, n, days = 3, 1, 7, 20
    u = np.random.RandomState(np.random.MT19937(np.random.SeedSequence([seed, block]))).rand(
        n, days)
    prices = S0 * np.cumprod(np.exp(DRIFT + SD * ndtri(u)), axis=1)
    chunk = stock.Chunk(seed, 2 * n, block, block + 1,
                        stock.Walk(days, S0, DRIFT, SD), "lithops", n)
    partial = stock.map(chunk)
    np.testing.assert_allclose(partial.end, prices[:, -1], rtol=1e-12)
    np.testing.assert_allclose(partial.mid, prices[:, -1], rtol=1e-12)  # day min(365, 20)


def test_forecasts_per_call_is_for_lithops_only():
    with pytest.raises(workloads.WorkloadError, match="forecasts_per_call"):
        workloads.get("stock").validate(10, 1, {"forecasts_per_call": 7})
