"""Monte Carlo stock forecasts: a geometric random walk ``S_t = S_{t-1} * exp(drift + sd * Z)``.

Forecasts come in blocks of :data:`BLOCK`, each drawn from ``default_rng([seed, block])``.
Partials carry the simulated prices themselves (two floats per forecast), and ``reduce``
concatenates them in block order, so means and percentiles are bit-identical for any
number of tasks.

The summary keys are fixed: ``mean_day_365`` is the mean price on day ``min(365, days)``;
``mean_day_730``, ``p05_day_730`` and ``p95_day_730`` describe the *last* day, ``days``
(day 730 with the default); the ``days`` key says which day that was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads._base import Param, ParamValue, Size, Workload, block_items, split_blocks

BLOCK = 64
"""Forecasts per block: ~47k normals at 730 days, and ~3900 blocks at the default size."""

MID_DAY = 365


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


@dataclass(frozen=True)
class Partial:
    """Prices on the middle and last day of a contiguous run of blocks starting at ``first``."""

    first: int
    days: int
    mid: np.ndarray
    end: np.ndarray


def partition(tasks: int, size: Size, seed: int, params: dict[str, ParamValue]) -> list[Chunk]:
    """Give each task a contiguous run of forecast blocks."""
    walk = Walk(int(params["days"]), float(params["s0"]), float(params["drift"]),
                float(params["std_dev"]))
    return [
        Chunk(seed, int(size), first, stop, walk)
        for first, stop in split_blocks(int(size), BLOCK, tasks)
    ]


def map(chunk: Chunk) -> Partial:
    """Simulate the chunk's forecasts; keep the prices on day min(365, days) and day ``days``."""
    walk = chunk.walk
    mids, ends = [], []
    for b in range(chunk.first, chunk.stop):
        z = np.random.default_rng([chunk.seed, b]).standard_normal(
            (block_items(b, BLOCK, chunk.size), walk.days)
        )
        np.multiply(z, walk.std_dev, out=z)
        np.add(z, walk.drift, out=z)
        log_price = np.cumsum(z, axis=1)
        mids.append(walk.s0 * np.exp(log_price[:, min(MID_DAY, walk.days) - 1]))
        ends.append(walk.s0 * np.exp(log_price[:, -1]))
    empty = np.empty(0)
    return Partial(
        chunk.first,
        walk.days,
        np.concatenate(mids) if mids else empty,
        np.concatenate(ends) if ends else empty,
    )


def reduce(partials: list[Partial]) -> Partial:
    """Concatenate the prices in block order, whatever order the partials arrive in."""
    ordered = sorted(partials, key=lambda p: p.first)
    return Partial(
        0,
        ordered[0].days,
        np.concatenate([p.mid for p in ordered]),
        np.concatenate([p.end for p in ordered]),
    )


def summary(result: Partial) -> dict[str, Any]:
    """Means on both days and the 5th/95th percentiles (linear interpolation) of the last."""
    return {
        "forecasts": int(result.end.size),
        "days": result.days,
        "mean_day_365": float(np.mean(result.mid)),
        "mean_day_730": float(np.mean(result.end)),
        "p05_day_730": float(np.percentile(result.end, 5)),
        "p95_day_730": float(np.percentile(result.end, 95)),
    }


WORKLOAD = Workload(
    name="stock",
    description="Monte Carlo stock price forecasts with a geometric random walk",
    size_meaning="total forecasts (random walks)",
    default_size=250_000,
    params=(
        Param("days", int, 730, "days per forecast (the last day is reported as day 730)",
              minimum=1),
        Param("s0", float, 159.44, "price on day 0", above=0.0),
        Param("drift", float, -0.00022513546014255100, "daily drift of the log price"),
        Param("std_dev", float, 0.0121678341323272, "daily standard deviation of the log price",
              minimum=0.0),
    ),
    partition=partition,
    map=map,
    reduce=reduce,
    summary=summary,
)
