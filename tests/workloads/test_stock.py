"""stock: the geometric random walk against its closed-form mean and log-normal quantiles."""

from __future__ import annotations

import math

import pytest

import workloads

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
