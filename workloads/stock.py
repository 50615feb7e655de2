"""Monte Carlo stock forecasts: a geometric random walk ``S_t = S_{t-1} * exp(drift + sd * Z)``.

Forecasts come in blocks, each drawn from its own generator seeded with ``(seed, block)``.
Partials carry the simulated prices themselves (two floats per forecast), and ``reduce``
concatenates them in block order, so means and percentiles are bit-identical for any
number of tasks.

Two flavours (parameter ``flavour``):

``fast`` (default)
    Blocks of :data:`BLOCK` forecasts; ``Z`` for a whole block at once from
    ``default_rng([seed, block]).standard_normal``, log prices by ``cumsum``. 250 000
    forecasts by default.

``lithops``
    The Lithops stock-prediction example as the thesis ran it (``lithops-cloud/applications``,
    ``montecarlo/stock_prediction/stock_prediction_monte_carlo.ipynb``): ``MAP_INSTANCES =
    10`` calls of ``forecasts_per_map = 100`` forecasts (1000 in all) of ``days2predict =
    730`` days, ``StockData(drift=-0.00022513546014255100, std_dev=0.0121678341323272,
    last_value=159.44)``. Each day is one scalar step of the original's
    ``single_forecast_generator``: ``rand = np.random.rand()``, ``pow_r =
    scipy.stats.norm.ppf(rand)`` (the inverse normal CDF of a uniform), ``price =
    previous * np.exp(drift + std_dev * pow_r)`` appended to a Python list; each call keeps
    day ``days`` and day 365 of every forecast, as ``process_forecasts`` kept
    ``frc[end]`` and ``frc[mid]`` (``mid = int(730 / 2)``). One block of
    ``forecasts_per_call`` forecasts is one original call. What differs: the original drew
    from numpy's global legacy ``RandomState``, unseeded; here each block has its own
    ``RandomState`` over an ``MT19937`` (the same generator) seeded from
    ``SeedSequence([seed, block])``. The repository's README says ``MAP_INSTANCES``
    defaults to 1000; its code, which the thesis ran, sets 10.

The summary keys are fixed: ``mean_day_365`` is the mean price on day ``min(365, days)``;
``mean_day_730``, ``p05_day_730`` and ``p95_day_730`` describe the *last* day, ``days``
(day 730 with the default); the ``days`` key says which day that was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads._base import Param, ParamValue, Size, Workload, block_items, split_blocks
from workloads._thesis_flavour import LITHOPS, check_unused, flavour_param

BLOCK = 64
"""Forecasts per block (fast): ~47k normals at 730 days, and ~3900 blocks at the default size."""

MID_DAY = 365

LITHOPS_FORECASTS_PER_CALL = 100
"""The original's ``forecasts_per_map``."""

LITHOPS_DEFAULT_SIZE = 10 * LITHOPS_FORECASTS_PER_CALL
"""The original's ``MAP_INSTANCES * forecasts_per_map`` = 1000 forecasts."""


@dataclass(frozen=True)
class Walk:
    """The random walk's parameters (picklable, shared by every chunk)."""

    days: int
    s0: float
    drift: float
    std_dev: float


@dataclass(frozen=True)
class Chunk:
    """Forecast blocks ``[first, stop)`` out of ``size`` forecasts."""

    seed: int
    size: int
    first: int
    stop: int
    walk: Walk
    flavour: str = "fast"
    block: int = BLOCK


@dataclass(frozen=True)
class Partial:
    """Prices on the middle and last day of a contiguous run of blocks starting at ``first``."""

    first: int
    days: int
    mid: np.ndarray
    end: np.ndarray
    flavour: str = "fast"
    calls: int = 0


def partition(tasks: int, size: Size, seed: int, params: dict[str, ParamValue]) -> list[Chunk]:
    """Give each task a contiguous run of forecast blocks (lithops: one block = one call)."""
    walk = Walk(int(params["days"]), float(params["s0"]), float(params["drift"]),
                float(params["std_dev"]))
    flavour = str(params["flavour"])
    block = int(params["forecasts_per_call"]) if flavour == LITHOPS else BLOCK
    return [
        Chunk(seed, int(size), first, stop, walk, flavour, block)
        for first, stop in split_blocks(int(size), block, tasks)
    ]


def map(chunk: Chunk) -> Partial:
    """Simulate the chunk's forecasts; keep the prices on day min(365, days) and day ``days``."""
    walk = chunk.walk
    mid_day = min(MID_DAY, walk.days)
    mids, ends = [], []
    for b in range(chunk.first, chunk.stop):
        n = block_items(b, chunk.block, chunk.size)
        if chunk.flavour == LITHOPS:
            mid, end = _process_forecasts(walk, n, chunk.seed, b)
        else:
            z = np.random.default_rng([chunk.seed, b]).standard_normal((n, walk.days))
            np.multiply(z, walk.std_dev, out=z)
            np.add(z, walk.drift, out=z)
            log_price = np.cumsum(z, axis=1)
            mid = walk.s0 * np.exp(log_price[:, mid_day - 1])
            end = walk.s0 * np.exp(log_price[:, -1])
        mids.append(mid)
        ends.append(end)
    empty = np.empty(0)
    return Partial(
        chunk.first,
        walk.days,
        np.concatenate(mids) if mids else empty,
        np.concatenate(ends) if ends else empty,
        chunk.flavour,
        chunk.stop - chunk.first,
    )


def _process_forecasts(walk: Walk, n: int, seed: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """One original call: ``n`` scalar forecasts; prices on day min(365, days) and the last."""
    rng = np.random.RandomState(np.random.MT19937(np.random.SeedSequence([seed, block])))
    stock = StockData(walk, rng)
    mid_day = min(MID_DAY, walk.days)
    hist_end, hist_mid = [], []
    for _ in range(n):
        frc = stock.single_forecast_generator()
        hist_end.append(frc[walk.days])
        hist_mid.append(frc[mid_day])
    return np.array(hist_mid, dtype=np.float64), np.array(hist_end, dtype=np.float64)


class StockData:
    """The original's ``StockData.single_forecast_generator``, with a seeded ``RandomState``.

    >>> walk = Walk(days=3, s0=100.0, drift=0.0, std_dev=0.0)
    >>> [float(p) for p in StockData(walk, np.random.RandomState(0)).single_forecast_generator()]
    [100.0, 100.0, 100.0, 100.0]
    """

    def __init__(self, walk: Walk, rng: np.random.RandomState) -> None:
        self.days2predict = walk.days
        self.last_value = walk.s0
        self.drift = walk.drift
        self.std_dev = walk.std_dev
        self.rng = rng

    def single_forecast_generator(self) -> list[float]:
        """``days2predict + 1`` prices, day 0 first; one uniform, one ``norm.ppf`` per day."""
        import scipy.stats as scpy  # lazy: the registry imports numpy only

        predicts_est = [self.last_value]
        for predict in range(1, self.days2predict + 1):
            rand = self.rng.rand()
            pow_r = scpy.norm.ppf(rand)
            predicts_est.append(predicts_est[predict - 1] * np.exp(self.drift
                                                                   + (self.std_dev * pow_r)))
        return predicts_est


def reduce(partials: list[Partial]) -> Partial:
    """Concatenate the prices in block order, whatever order the partials arrive in."""
    ordered = sorted(partials, key=lambda p: p.first)
    return Partial(
        0,
        ordered[0].days,
        np.concatenate([p.mid for p in ordered]),
        np.concatenate([p.end for p in ordered]),
        ordered[0].flavour,
        sum(p.calls for p in ordered),
    )


def summary(result: Partial) -> dict[str, Any]:
    """Means on both days and the 5th/95th percentiles (linear interpolation) of the last."""
    out: dict[str, Any] = {
        "flavour": result.flavour,
        "forecasts": int(result.end.size),
        "days": result.days,
        "mean_day_365": float(np.mean(result.mid)),
        "mean_day_730": float(np.mean(result.end)),
        "p05_day_730": float(np.percentile(result.end, 5)),
        "p95_day_730": float(np.percentile(result.end, 95)),
    }
    if result.flavour == LITHOPS:
        out["calls"] = result.calls
    return out


def prepare(size: Size | None, params: dict[str, ParamValue]) -> Size:
    """Each flavour has its own default size; ``forecasts_per_call`` is for lithops only."""
    if params["flavour"] == LITHOPS:
        return LITHOPS_DEFAULT_SIZE if size is None else size
    check_unused(WORKLOAD, params, ("forecasts_per_call",))
    return WORKLOAD.default_size if size is None else size


WORKLOAD = Workload(
    name="stock",
    description="Monte Carlo stock price forecasts with a geometric random walk",
    size_meaning=(f"total forecasts (random walks); default 250000, with flavour=lithops "
                  f"{LITHOPS_DEFAULT_SIZE} (the original's 10 calls of "
                  f"{LITHOPS_FORECASTS_PER_CALL})"),
    default_size=250_000,
    params=(
        Param("days", int, 730, "days per forecast (the last day is reported as day 730)",
              minimum=1),
        Param("s0", float, 159.44, "price on day 0", above=0.0),
        Param("drift", float, -0.00022513546014255100, "daily drift of the log price"),
        Param("std_dev", float, 0.0121678341323272, "daily standard deviation of the log price",
              minimum=0.0),
        flavour_param("lithops-cloud/applications montecarlo/stock_prediction: 10 calls of 100 "
                      "forecasts, each day a scalar np.random.rand() through "
                      "scipy.stats.norm.ppf, seeded per call here"),
        Param("forecasts_per_call", int, LITHOPS_FORECASTS_PER_CALL,
              "forecasts per call with flavour=lithops (the original's forecasts_per_map)",
              minimum=1),
    ),
    partition=partition,
    map=map,
    reduce=reduce,
    summary=summary,
    prepare=prepare,
)
