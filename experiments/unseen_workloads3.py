"""The THIRD set of benchmark-only workloads for ``bench_unseen_predict.py``.

Written after run 2 (sets 1 and 2) had been seen and the model changed on its account (a
shuffle reader's exchange placed two ways, chosen by held-out error; the reader's rotation
half a turn from its upstream), and committed before anything ran on them: rayjoule's models
were never developed or tuned on these. Registered by import path, as a user's own
(``--workload experiments.unseen_workloads3:TALLY``), with the built-ins' determinism rule:
work is cut into fixed blocks seeded by ``[seed, block]``, never by task, so any task count
gives the same summary. Shapes not covered by sets 1-2, chosen to probe the model's stated
limits rather than to suit it:

* ``TALLY`` — parallel work, then a **serial merge whose cost grows with the task count**.
  Each map task scores its records (numpy: 8 sines per record, ~0.12 µs) and aggregates
  them into a partial table over K = 2^18 keys (the keys it saw, their counts and sums);
  the one ``reduce`` task walks every partial table entry by entry in Python (~1 µs per
  entry: a dictionary merge that keeps count, sum, min and max). Every partial holds most
  of the K keys whatever the task count, so each map task adds ~0.25 s of serial merge.
  The reduce is a fixed stage (one task), which the model estimates linearly in size,
  blind to the map's task count. Estimate at the target (4,000,000 records): map ~0.6 s on
  one task; 1 task ≈ 0.6 + 0.26 s, 2 tasks ≈ 0.3 + 0.5 s on 2 slots, 16 tasks ≈ 0.3 + 3 s;
  CPU-seconds (what the tdp model's dynamic part follows) least at **1 task** (0.86 against
  1.1 at 2). A run ~1-1.5 s with the pool's start-up (16 tasks ~3.5 s).
* ``MEMO`` — **sub-linear size law, more work with more tasks**: each request looks up a
  key drawn from a Zipf law (a = 1.5: the distinct keys in m requests grow as ~m^0.67) in
  the task's own cache; a miss computes the key's value (300 rounds of a 64-bit LCG in pure
  Python, ~40 µs), a hit costs ~0.3 µs. Every task warms its own cache, so n tasks miss
  ~n·(s/n)^0.67 times: time per unit of size falls as the size grows (distinct keys in
  2,000,000 requests: 22.4k; in ⅛ of them 5.6k, per numpy draws of the law), and total work
  grows with the task count. Estimate at the target (2,000,000 requests), per task
  0.3 µs·s/n + 40 µs·D(s/n): 1 task 1.5 s; 2 tasks 0.87 s on 2 slots (1.74 CPU-s); 4 tasks
  1.0 s (2.0); 8 1.2 s (2.4); 16 1.4 s (2.8). Likely best: 2 tasks.
* ``GROUPBY`` (pipeline, a **skewed shuffle with a heavy reader**) — ``parse`` generates
  request records (service key from a Zipf(1) law over 2,000 services: the hottest holds
  ~12 % of the records; a timestamp; a log-normal latency) and partitions them by a hash of
  the key with one stable argsort (its cost does not depend on the reader's task count,
  unlike ``sessions``' pass per bucket); ``stats`` sorts its buckets' records by (service,
  time) and walks each service's latencies in Python (an exponentially weighted mean,
  ~0.15 µs per record, plus the sort: ~0.3 µs per record: the heavier stage); ``report``
  (one task) adds up per service in key order. Skew: at 8 reader tasks the hottest bucket
  holds ~23 % of the records, not 12.5 %. Estimate at the target (3,000,000 records):
  parse ~0.5 s and stats ~1.0 s on one task each: 1 × 1 ≈ 1.5 s, 2 × 2 ≈ 0.75 s on 2 slots
  (+ the store's and the pool's overhead).

Sweeps (bench): TALLY and MEMO 1, 2, 3, 4, 6, 8, 16 tasks; GROUPBY parse × stats in
{1, 2, 4, 8}². None of these figures were measured: they are arithmetic on per-operation
costs, written before any run, and the results file says what the runs found.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads import Edge, Pipeline, Stage, TaskContext
from workloads._base import Workload, block_items, split_blocks

# -- TALLY -----------------------------------------------------------------------------------
TALLY_BLOCK = 25_000
TALLY_KEYS = 1 << 18
HARMONICS = 8


@dataclass(frozen=True)
class Rows:
    """Blocks ``[first, stop)`` of n records (TALLY) or requests (MEMO)."""

    n: int
    seed: int
    first: int
    stop: int


def _tally_partition(tasks: int, size: Any, seed: int, params: dict) -> list[Rows]:
    n = int(size)
    return [Rows(n, seed, a, b) for a, b in split_blocks(n, TALLY_BLOCK, tasks)]


def _tally_map(chunk: Rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The task's partial table: the keys it saw, their record counts and score sums
    (scores in integer thousandths, so sums are exact whatever the task count)."""
    counts = np.zeros(TALLY_KEYS, np.int64)
    sums = np.zeros(TALLY_KEYS, np.int64)
    for b in range(chunk.first, chunk.stop):
        m = block_items(b, TALLY_BLOCK, chunk.n)
        rng = np.random.default_rng([chunk.seed, b])
        keys = rng.integers(0, TALLY_KEYS, size=m)
        v = rng.random(m)
        score = np.zeros(m)
        for j in range(1, HARMONICS + 1):
            score += np.sin(v * j) / j
        counts += np.bincount(keys, minlength=TALLY_KEYS)
        sums += np.bincount(keys, weights=np.round(score * 1000),
                            minlength=TALLY_KEYS).astype(np.int64)
    seen = np.flatnonzero(counts)
    return seen, counts[seen], sums[seen]


def _tally_reduce(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """The serial merge: every partial table entry by entry (count, sum, min, max per key)."""
    table: dict[int, list] = {}
    for keys, counts, sums in parts:
        for k, c, s in zip(keys.tolist(), counts.tolist(), sums.tolist(), strict=True):
            row = table.get(k)
            if row is None:
                table[k] = [c, s, s, s]
            else:
                row[0] += c
                row[1] += s
                row[2] = min(row[2], s)
                row[3] = max(row[3], s)
    records = sum(row[0] for row in table.values())
    total = sum(row[1] for row in table.values())
    busiest = min(table, key=lambda k: (-table[k][0], k)) if table else -1
    return {"records": records, "keys": len(table), "score_total_milli": total,
            "busiest_key": busiest}


def _tally_summary(r: dict[str, Any]) -> dict[str, Any]:
    return dict(r)


TALLY = Workload(
    name="tally", description="Scored records aggregated per key by parallel tasks, then "
                              "merged serially entry by entry",
    size_meaning="records", default_size=1_000_000, params=(),
    partition=_tally_partition, map=_tally_map, reduce=_tally_reduce, summary=_tally_summary,
)

# -- MEMO ------------------------------------------------------------------------------------
MEMO_BLOCK = 10_000
ZIPF_A = 1.5
LCG_ROUNDS = 300
MASK64 = (1 << 64) - 1


def _memo_partition(tasks: int, size: Any, seed: int, params: dict) -> list[Rows]:
    n = int(size)
    return [Rows(n, seed, a, b) for a, b in split_blocks(n, MEMO_BLOCK, tasks)]


def _value(key: int) -> int:
    """The expensive function a miss computes (pure Python, ~40 µs)."""
    x = key
    for _ in range(LCG_ROUNDS):
        x = (x * 6364136223846793005 + 1442695040888963407) & MASK64
    return x >> 48


def _memo_map(chunk: Rows) -> tuple[int, int]:
    """(requests, sum of their values mod 2^32), through this task's own cache."""
    cache: dict[int, int] = {}
    total, count = 0, 0
    for b in range(chunk.first, chunk.stop):
        m = block_items(b, MEMO_BLOCK, chunk.n)
        keys = np.random.default_rng([chunk.seed, b]).zipf(ZIPF_A, size=m).tolist()
        for k in keys:
            v = cache.get(k)
            if v is None:
                v = cache[k] = _value(k)
            total += v
        count += m
    return count, total & 0xFFFFFFFF


def _memo_reduce(parts: list[tuple[int, int]]) -> tuple[int, int]:
    return sum(p[0] for p in parts), sum(p[1] for p in parts) & 0xFFFFFFFF


def _memo_summary(r: tuple[int, int]) -> dict[str, int]:
    return {"requests": r[0], "value_sum_mod_2_32": r[1]}


MEMO = Workload(
    name="memo", description="Zipf-keyed requests answered through a per-task cache of an "
                             "expensive pure-Python function",
    size_meaning="requests", default_size=500_000, params=(),
    partition=_memo_partition, map=_memo_map, reduce=_memo_reduce, summary=_memo_summary,
)

# -- GROUPBY (pipeline) ----------------------------------------------------------------------
REQ_BLOCK, SERVICES, ALPHA = 50_000, 2_000, 0.05
_P = 1.0 / np.arange(1, SERVICES + 1)
SERVICE_P = _P / _P.sum()
#: a fixed hash of each service key (crc32), so buckets do not depend on the task count
SERVICE_HASH = np.array([zlib.crc32(k.to_bytes(4, "little")) for k in range(SERVICES)],
                        dtype=np.int64)


def _requests_source(stage: str, tasks: int, size: Any, seed: int,
                     params: dict) -> list[Rows]:
    n = int(size)
    return [Rows(n, seed, a, b) for a, b in split_blocks(n, REQ_BLOCK, tasks)]


def _parse(ctx: TaskContext, inputs: dict[str, list]) -> list[tuple[np.ndarray, ...]]:
    src: Rows = ctx.source
    keys, times, lats = [], [], []
    for b in range(src.first, src.stop):
        m = block_items(b, REQ_BLOCK, src.n)
        rng = np.random.default_rng([src.seed, b])
        keys.append(rng.choice(SERVICES, size=m, p=SERVICE_P))
        times.append(np.round(rng.uniform(0.0, 3600.0, size=m), 4))
        lats.append(np.round(rng.lognormal(3.0, 0.8, size=m), 3))
    k = np.concatenate(keys) if keys else np.zeros(0, np.int64)
    t = np.concatenate(times) if times else np.zeros(0)
    lat = np.concatenate(lats) if lats else np.zeros(0)
    bucket = SERVICE_HASH[k] % ctx.fanout
    order = np.argsort(bucket, kind="stable")
    cuts = np.searchsorted(bucket[order], np.arange(1, ctx.fanout))
    return [(k[i], t[i], lat[i]) for i in np.split(order, cuts)]


def _stats(ctx: TaskContext, inputs: dict[str, list]) -> list[tuple[int, int, float]]:
    """Per service in its bucket: (key, requests, EWMA of its latencies in time order)."""
    parts = inputs["parse"]
    k = np.concatenate([p[0] for p in parts])
    t = np.concatenate([p[1] for p in parts])
    lat = np.concatenate([p[2] for p in parts])
    if k.size == 0:
        return []
    order = np.lexsort((lat, t, k))
    k, lat = k[order], lat[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    ends = np.r_[starts[1:], k.size]
    out = []
    values = lat.tolist()
    for a, z in zip(starts.tolist(), ends.tolist(), strict=True):
        e = values[a]
        for x in values[a + 1:z]:
            e += ALPHA * (x - e)
        out.append((int(k[a]), z - a, e))
    return out


def _report(ctx: TaskContext, inputs: dict[str, list]) -> dict[str, Any]:
    rows = sorted(r for part in inputs["stats"] for r in part)
    hottest = max(rows, key=lambda r: (r[1], -r[0])) if rows else (-1, 0, 0.0)
    return {"services": len(rows), "requests": sum(r[1] for r in rows),
            "ewma_sum": round(math.fsum(r[2] for r in rows), 3),
            "hottest_service": hottest[0], "hottest_requests": hottest[1]}


def _groupby_summary(outputs: dict[str, list]) -> dict[str, Any]:
    return dict(outputs["report"][0])


GROUPBY = Pipeline(
    name="groupby", description="Request records shuffled by service (skewed), per-service "
                                "latency EWMA in Python",
    size_meaning="records", default_size=1_000_000, params=(),
    stages=(
        Stage("parse", _parse, inputs=(), default_tasks=2),
        Stage("stats", _stats, inputs=(Edge("parse", "bucket"),), default_tasks=2),
        Stage("report", _report, inputs=(Edge("stats", "all"),), default_tasks=1,
              max_tasks=1),
    ),
    source=_requests_source,
    summary=_groupby_summary,
)
