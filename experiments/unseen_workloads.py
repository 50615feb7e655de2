"""Workloads and a pipeline written only for ``bench_unseen_predict.py``: work rayjoule's
models were never developed or tuned on.

They are registered the way a user registers their own, by import path
(``--workload experiments.unseen_workloads:COLLATZ``, docs/pipelines.md), and follow the
same determinism rule as the built-in ones: work is cut into fixed blocks seeded by
``[seed, block]``, never by task, so any task count gives the same summary.

* ``COLLATZ`` — total Collatz stopping times of 1..n, pure Python. Every task first builds
  its own table of the stopping times below 2^15 (a fixed per-task warm-up, like loading a
  model), then walks its blocks using it.
* ``KMEANS`` — one k-means assignment step: n random points (d = 16) against 64 seeded
  centroids, numpy elementwise (no BLAS, so one task is one core); the cluster sizes.
* ``SESSIONS`` — a pipeline: ``events`` generates n click events (user, time) per block and
  shuffles them by user into buckets; ``sessionize`` sorts each bucket's events and counts
  sessions (a gap of more than 30 minutes starts a new one); ``report`` (one task) adds up.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads import Edge, Pipeline, Stage, TaskContext
from workloads._base import Workload, split_blocks

# -- COLLATZ ---------------------------------------------------------------------------------
COLLATZ_BLOCK = 2048
TABLE_BELOW = 1 << 15


@dataclass(frozen=True)
class Numbers:
    """Blocks ``[first, stop)`` of 1..n."""

    n: int
    first: int
    stop: int


def _collatz_partition(tasks: int, size: Any, seed: int, params: dict) -> list[Numbers]:
    n = int(size)
    return [Numbers(n, a, b) for a, b in split_blocks(n, COLLATZ_BLOCK, tasks)]


def _table() -> list[int]:
    """Stopping times of 0..TABLE_BELOW-1 (0 and 1 take 0 steps)."""
    steps = [0] * TABLE_BELOW
    for i in range(2, TABLE_BELOW):
        x, k = i, 0
        while x >= i:
            x = x // 2 if x % 2 == 0 else 3 * x + 1
            k += 1
        steps[i] = k + steps[x]
    return steps


def _collatz_map(chunk: Numbers) -> tuple[int, int]:
    table = _table()
    total = longest = 0
    for b in range(chunk.first, chunk.stop):
        for i in range(b * COLLATZ_BLOCK + 1, min((b + 1) * COLLATZ_BLOCK, chunk.n) + 1):
            x, k = i, 0
            while x >= TABLE_BELOW:
                x = x // 2 if x % 2 == 0 else 3 * x + 1
                k += 1
            k += table[x]
            total += k
            longest = max(longest, k)
    return total, longest


def _collatz_reduce(partials: list[tuple[int, int]]) -> tuple[int, int]:
    return sum(p[0] for p in partials), max(p[1] for p in partials)


def _collatz_summary(r: tuple[int, int]) -> dict[str, int]:
    return {"total_steps": r[0], "longest": r[1]}


COLLATZ = Workload(
    name="collatz", description="Total Collatz stopping times of 1..n (pure Python)",
    size_meaning="n", default_size=200_000, params=(),
    partition=_collatz_partition, map=_collatz_map, reduce=_collatz_reduce,
    summary=_collatz_summary,
)

# -- KMEANS ----------------------------------------------------------------------------------
KM_BLOCK, KM_DIM, KM_K, KM_ROWS = 4096, 16, 64, 256


@dataclass(frozen=True)
class Points:
    n: int
    seed: int
    first: int
    stop: int


def _km_partition(tasks: int, size: Any, seed: int, params: dict) -> list[Points]:
    n = int(size)
    return [Points(n, seed, a, b) for a, b in split_blocks(n, KM_BLOCK, tasks)]


def _km_map(chunk: Points) -> np.ndarray:
    centroids = np.random.default_rng([chunk.seed, 1 << 30]).normal(size=(KM_K, KM_DIM)) * 2
    counts = np.zeros(KM_K, dtype=np.int64)
    for b in range(chunk.first, chunk.stop):
        m = min(KM_BLOCK, chunk.n - b * KM_BLOCK)
        x = np.random.default_rng([chunk.seed, b]).normal(size=(m, KM_DIM)) * 3
        for r in range(0, m, KM_ROWS):
            part = x[r:r + KM_ROWS]
            d = ((part[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
            counts += np.bincount(d.argmin(axis=1), minlength=KM_K)
    return counts


def _km_reduce(parts: list[np.ndarray]) -> np.ndarray:
    return np.sum(parts, axis=0)


def _km_summary(c: np.ndarray) -> dict[str, int]:
    return {"points": int(c.sum()), "largest": int(c.max()),
            "checksum": int((np.arange(KM_K) * c).sum())}


KMEANS = Workload(
    name="kmeans", description="One k-means assignment step of n random points (numpy)",
    size_meaning="points", default_size=100_000, params=(),
    partition=_km_partition, map=_km_map, reduce=_km_reduce, summary=_km_summary,
)

# -- SESSIONS (pipeline) ---------------------------------------------------------------------
EV_BLOCK, USERS, GAP_S, DAY_S = 20_000, 5_000, 1800.0, 7 * 86_400.0


@dataclass(frozen=True)
class EventBlocks:
    n: int
    seed: int
    first: int
    stop: int


def _events_source(stage: str, tasks: int, size: Any, seed: int,
                   params: dict) -> list[EventBlocks]:
    n = int(size)
    return [EventBlocks(n, seed, a, b) for a, b in split_blocks(n, EV_BLOCK, tasks)]


def _events(ctx: TaskContext, inputs: dict[str, list]) -> list[tuple[np.ndarray, np.ndarray]]:
    src: EventBlocks = ctx.source
    users, times = [], []
    for b in range(src.first, src.stop):
        m = min(EV_BLOCK, src.n - b * EV_BLOCK)
        rng = np.random.default_rng([src.seed, b])
        users.append((rng.zipf(1.3, size=m) % USERS).astype(np.int64))
        times.append(np.round(rng.uniform(0, DAY_S, size=m), 3))
    u = np.concatenate(users) if users else np.zeros(0, np.int64)
    t = np.concatenate(times) if times else np.zeros(0)
    bucket = np.array([zlib.crc32(int(x).to_bytes(4, "little")) for x in range(USERS)],
                      dtype=np.int64)[u] % ctx.fanout
    return [(u[bucket == i], t[bucket == i]) for i in range(ctx.fanout)]


def _sessionize(ctx: TaskContext, inputs: dict[str, list]) -> tuple[int, int, int]:
    parts = inputs["events"]
    u = np.concatenate([p[0] for p in parts])
    t = np.concatenate([p[1] for p in parts])
    if u.size == 0:
        return 0, 0, 0
    order = np.lexsort((t, u))
    u, t = u[order], t[order]
    new = np.ones(u.size, dtype=bool)
    new[1:] = (u[1:] != u[:-1]) | (np.diff(t) > GAP_S)
    starts = np.flatnonzero(new)
    lengths = np.diff(np.append(starts, u.size))
    return int(starts.size), int(np.unique(u).size), int(lengths.max())


def _report(ctx: TaskContext, inputs: dict[str, list]) -> dict[str, int]:
    parts = inputs["sessionize"]
    return {"sessions": sum(p[0] for p in parts), "users": sum(p[1] for p in parts),
            "longest_session": max(p[2] for p in parts)}


def _sessions_summary(outputs: dict[str, list]) -> dict[str, int]:
    return dict(outputs["report"][0])


SESSIONS = Pipeline(
    name="sessions", description="Click events shuffled by user, sorted, cut into sessions",
    size_meaning="events", default_size=1_000_000, params=(),
    stages=(
        Stage("events", _events, inputs=(), default_tasks=2),
        Stage("sessionize", _sessionize, inputs=(Edge("events", "bucket"),), default_tasks=2),
        Stage("report", _report, inputs=(Edge("sessionize", "all"),), default_tasks=1,
              max_tasks=1),
    ),
    source=_events_source,
    summary=_sessions_summary,
)
