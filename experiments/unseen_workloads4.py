"""The FOURTH set of benchmark-only workloads for ``bench_unseen_predict.py``.

Written on 2026-12-07 after run 3 and this session's probes had been seen and the model had
changed (a fixed one-task stage whose cost grows with its upstream's task count), and
committed before anything ran on them: rayjoule's models were never developed or tuned on
these. Registered by import path, as a user's own (``--workload
experiments.unseen_workloads4:BLOOM``), with the built-ins' determinism rule: work is cut
into fixed blocks seeded by ``[seed, block]``, never by task, so any task count gives the
same summary. Everyday shapes this time, not the model's stated limits:

* ``BLOOM`` — a Bloom filter over record ids: each map task allocates its own filter of
  2^22 bits (a 4 MB numpy bool array: a fixed per-task cost) and sets 4 bits per record
  (multiply-shift hashes of uint64 ids; scattered writes, cache-missing); the driver ORs the
  filters (~1 ms each) and reports the bits set and the estimated distinct ids. Estimate at
  the target (8,000,000 ids): ~0.12 µs per id-hash → ~1.0 s on one task, ~0.5 s on two
  slots. Likely best: 2 tasks.
* ``PRICING`` — Monte Carlo price of an arithmetic-average Asian call: per block of 20,000
  paths, 64 normal steps (numpy: exp of a cumulative sum), the payoffs' sum per block; the
  driver adds the blocks' sums in block order (``math.fsum``). Pure numpy compute, linear in
  the paths. Estimate at the target (800,000 paths, 40 blocks): ~30 ms per block → 1.2 s on
  one task. Likely best: 2 tasks.
* ``ETL`` (pipeline) — ``decode`` generates CSV-like text lines per block (customer id,
  day, amount) and parses them in pure Python (``split``, ``int``, ``float``: ~1 µs per
  line), then partitions the rows by customer into the readers' buckets; ``join`` (the
  bucket reader) builds its own dimension table of 5,000 customers (their region and tier:
  a per-task start-up of ~10 ms) and sums the revenue per (customer, month) for its
  customers — a partial table of up to ~5,000 × 12 / readers keys; ``rollup`` (one task,
  ``max_tasks=1``) walks every partial table entry by entry in Python into per (region,
  month) totals. Its cost grows with the rows it walks, which is with the number of
  customer-months — not with the join's task count, since the keys are partitioned — so
  a merge law that grows with the upstream's tasks should *not* be chosen here. Estimate at
  the target (1,000,000 rows): decode ~1.2 s on one task, join ~0.5 s, rollup ~60 ms.
  Likely best: decode 2, join 2.

Sweeps (bench): BLOOM and PRICING 1, 2, 3, 4, 6, 8, 16 tasks; ETL decode × join in
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

# -- BLOOM -----------------------------------------------------------------------------------
BLOOM_BLOCK = 200_000
BLOOM_BITS = 1 << 22
HASHES = 4
#: odd 64-bit multipliers of the multiply-shift hashes (one per hash function)
MULTIPLIERS = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                        0xD6E8FEB86659FD93], dtype=np.uint64)
ID_SPACE = 1 << 40


@dataclass(frozen=True)
class Blocks:
    """Blocks ``[first, stop)`` of ``n`` items (ids, paths or rows)."""

    n: int
    seed: int
    first: int
    stop: int


def _bloom_partition(tasks: int, size: Any, seed: int, params: dict) -> list[Blocks]:
    n = int(size)
    return [Blocks(n, seed, a, b) for a, b in split_blocks(n, BLOOM_BLOCK, tasks)]


def _bloom_map(chunk: Blocks) -> np.ndarray:
    """This task's own filter (2^22 bits as bools) with 4 bits set per id."""
    bits = np.zeros(BLOOM_BITS, dtype=bool)
    shift = np.uint64(64 - 22)
    for b in range(chunk.first, chunk.stop):
        m = block_items(b, BLOOM_BLOCK, chunk.n)
        ids = np.random.default_rng([chunk.seed, b]).integers(0, ID_SPACE, size=m,
                                                              dtype=np.uint64)
        for mult in MULTIPLIERS:
            bits[(ids * mult) >> shift] = True
    return bits


def _bloom_reduce(filters: list[np.ndarray]) -> np.ndarray:
    out = np.zeros(BLOOM_BITS, dtype=bool)
    for f in filters:
        out |= f
    return out


def _bloom_summary(bits: np.ndarray) -> dict[str, Any]:
    set_bits = int(bits.sum())
    # the standard estimate of the distinct items in a filter: -m/k · ln(1 - X/m)
    estimate = -BLOOM_BITS / HASHES * math.log(1 - set_bits / BLOOM_BITS)
    return {"bits_set": set_bits, "distinct_estimate": round(estimate)}


BLOOM = Workload(
    name="bloom", description="Record ids hashed into per-task Bloom filters, OR-ed",
    size_meaning="ids", default_size=2_000_000, params=(),
    partition=_bloom_partition, map=_bloom_map, reduce=_bloom_reduce, summary=_bloom_summary,
)

# -- PRICING ---------------------------------------------------------------------------------
PATH_BLOCK = 20_000
STEPS = 64
S0, STRIKE, RATE, VOL, YEARS = 100.0, 100.0, 0.03, 0.25, 1.0


def _pricing_partition(tasks: int, size: Any, seed: int, params: dict) -> list[Blocks]:
    n = int(size)
    return [Blocks(n, seed, a, b) for a, b in split_blocks(n, PATH_BLOCK, tasks)]


def _pricing_map(chunk: Blocks) -> list[tuple[int, float, int]]:
    """(block, sum of its discounted payoffs, paths) per block of this task."""
    dt = YEARS / STEPS
    drift = (RATE - 0.5 * VOL * VOL) * dt
    out = []
    for b in range(chunk.first, chunk.stop):
        m = block_items(b, PATH_BLOCK, chunk.n)
        z = np.random.default_rng([chunk.seed, b]).standard_normal((m, STEPS))
        paths = S0 * np.exp(np.cumsum(drift + VOL * math.sqrt(dt) * z, axis=1))
        payoff = np.maximum(paths.mean(axis=1) - STRIKE, 0.0) * math.exp(-RATE * YEARS)
        out.append((b, math.fsum(payoff.tolist()), m))
    return out


def _pricing_reduce(parts: list[list[tuple[int, float, int]]]) -> dict[str, Any]:
    blocks = sorted(x for part in parts for x in part)
    paths = sum(m for _, _, m in blocks)
    total = math.fsum(s for _, s, _ in blocks)
    return {"paths": paths, "price": round(total / paths, 6) if paths else 0.0}


def _pricing_summary(r: dict[str, Any]) -> dict[str, Any]:
    return dict(r)


PRICING = Workload(
    name="pricing", description="Monte Carlo price of an Asian call, paths in numpy blocks",
    size_meaning="paths", default_size=200_000, params=(),
    partition=_pricing_partition, map=_pricing_map, reduce=_pricing_reduce,
    summary=_pricing_summary,
)

# -- ETL (pipeline) --------------------------------------------------------------------------
ROW_BLOCK = 25_000
CUSTOMERS = 5_000
REGIONS = ("north", "south", "east", "west", "centre", "islands", "coast", "hills")
#: a fixed hash of each customer id (crc32), so buckets do not depend on the task count
CUSTOMER_HASH = [zlib.crc32(c.to_bytes(4, "little")) for c in range(CUSTOMERS)]


def _rows_source(stage: str, tasks: int, size: Any, seed: int, params: dict) -> list[Blocks]:
    n = int(size)
    return [Blocks(n, seed, a, b) for a, b in split_blocks(n, ROW_BLOCK, tasks)]


def _decode(ctx: TaskContext, inputs: dict[str, list]) -> list[list[tuple[int, int, float]]]:
    """Text lines generated per block, parsed in Python, bucketed by customer."""
    src: Blocks = ctx.source
    buckets: list[list[tuple[int, int, float]]] = [[] for _ in range(ctx.fanout)]
    for b in range(src.first, src.stop):
        m = block_items(b, ROW_BLOCK, src.n)
        rng = np.random.default_rng([src.seed, b])
        cust = rng.integers(0, CUSTOMERS, size=m).tolist()
        day = rng.integers(0, 365, size=m).tolist()
        cents = rng.integers(100, 50_000, size=m).tolist()
        lines = [f"{c},{d},{a / 100:.2f}" for c, d, a in zip(cust, day, cents, strict=True)]
        for line in lines:
            c_s, d_s, a_s = line.split(",")
            c = int(c_s)
            buckets[CUSTOMER_HASH[c] % ctx.fanout].append((c, int(d_s), float(a_s)))
    return buckets


def _dimension(seed: int) -> dict[int, tuple[str, int]]:
    """The customer dimension (region, tier): every join task builds its own."""
    rng = np.random.default_rng([seed, 1 << 30])
    regions = rng.integers(0, len(REGIONS), size=CUSTOMERS).tolist()
    tiers = rng.integers(1, 4, size=CUSTOMERS).tolist()
    return {c: (REGIONS[r], t) for c, (r, t) in enumerate(zip(regions, tiers, strict=True))}


def _join(ctx: TaskContext, inputs: dict[str, list]) -> dict[tuple[int, int], int]:
    """Revenue in cents per (customer, month) of this task's customers, tier-weighted."""
    dim = _dimension(ctx.seed)
    out: dict[tuple[int, int], int] = {}
    for part in inputs["decode"]:
        for c, d, amount in part:
            key = (c, min(d // 31, 11))
            out[key] = out.get(key, 0) + round(amount * 100) * dim[c][1]
    return out


def _rollup(ctx: TaskContext, inputs: dict[str, list]) -> dict[str, Any]:
    """Every partial table entry by entry into per (region, month) totals."""
    dim = _dimension(ctx.seed)
    totals: dict[tuple[str, int], int] = {}
    for part in inputs["join"]:
        for (c, month), cents in part.items():
            key = (dim[c][0], month)
            totals[key] = totals.get(key, 0) + cents
    top = max(totals, key=lambda k: (totals[k], k)) if totals else ("", -1)
    return {"cells": len(totals), "revenue_cents": sum(totals.values()),
            "top_region": top[0], "top_month": top[1]}


def _etl_summary(outputs: dict[str, list]) -> dict[str, Any]:
    return dict(outputs["rollup"][0])


ETL = Pipeline(
    name="etl", description="CSV-like rows parsed in Python, shuffled by customer, joined "
                            "with a dimension table, rolled up per region and month",
    size_meaning="rows", default_size=250_000, params=(),
    stages=(
        Stage("decode", _decode, inputs=(), default_tasks=2),
        Stage("join", _join, inputs=(Edge("decode", "bucket"),), default_tasks=2),
        Stage("rollup", _rollup, inputs=(Edge("join", "all"),), default_tasks=1,
              max_tasks=1),
    ),
    source=_rows_source,
    summary=_etl_summary,
)
