"""The SIXTH set of benchmark-only workloads for ``bench_unseen_predict.py``.

Written on 2026-12-07 (fourth session) after run 6 had been seen, and committed before
anything ran on them: rayjoule's models were never developed or tuned on these (the model and
the profiling design have not changed since run 4). Registered by import path, as a user's
own (``--workload experiments.unseen_workloads6:SIEVE``), with the built-ins' determinism
rule: work is cut into fixed blocks seeded by ``[seed, block]``, never by task, so any task
count gives the same summary. Everyday shapes:

* ``SIEVE`` — primes below N counted with a segmented sieve of Eratosthenes in numpy: each
  task first sieves the base primes up to √N (a per-task cost that grows with √N, not with
  its share), then each block of 2,000,000 numbers strikes the multiples of every base prime
  with a strided slice. Per block at the target (N = 200,000,000, √N ≈ 14,142, ~1,660 base
  primes): ~1,660 slice assignments (~1.5 µs of Python each) writing ~2 M × Σ1/p ≈ 5 M
  strided bytes (~10 ms) → ~13 ms a block, 100 blocks → ~1.3 s on one task, ~0.7 s on two
  slots. Likely best: 2 tasks.
* ``JSONSTATS`` — JSON lines round-tripped: per block of 10,000 records, each record (an
  order: id, customer, category, quantity, price, a flag) is written with ``json.dumps`` and
  read back with ``json.loads``, then the task sums quantity × price per category and counts
  flagged orders; the driver adds 12 category totals. Pure-Python, GIL-bound, linear in the
  records: ~3 µs dumps + ~3 µs loads + ~1 µs arithmetic a record. Estimate at the target
  (300,000 records): ~2.1 s on one task. Likely best: 2 tasks.
* ``TOPK`` (pipeline) — ``score`` draws rows (an id and 4 features) in numpy blocks of
  200,000, scores them with a fixed linear model, and partitions (id, score) by ``id % readers``
  into the readers' buckets (a stable argsort of the bucket ids); ``select`` (the bucket
  reader) keeps the 1,000 best scores of its buckets (``np.argpartition``); ``merge`` (one
  task, ``max_tasks=1``) keeps the 1,000 best of the readers' lists — its input grows with
  the reader's task count (u × 1,000 rows), but at ~µs per thousand rows that is far below
  what the fixed-stage law can see, so its size-only law should stay. Estimate at the target
  (6,000,000 rows): score ~0.6 s on one task (drawing 24 M normals ~0.3 s, the argsort
  ~0.25 s), select ~0.1 s, merge ~1 ms. Likely best: score 2, select 1 or 2.

Sweeps (bench): SIEVE and JSONSTATS 1, 2, 3, 4, 6, 8, 16 tasks; TOPK score × select in
{1, 2, 4, 8}². None of these figures were measured: they are arithmetic on per-operation
costs, written before any run, and the results file says what the runs found.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads import Edge, Pipeline, Stage, TaskContext
from workloads._base import Workload, block_items, split_blocks


@dataclass(frozen=True)
class Blocks:
    """Blocks ``[first, stop)`` of ``n`` items (numbers, records or rows)."""

    n: int
    seed: int
    first: int
    stop: int


def _blocks(block: int, tasks: int, size: Any, seed: int) -> list[Blocks]:
    n = int(size)
    return [Blocks(n, seed, a, b) for a, b in split_blocks(n, block, tasks)]


# (module-level partitions: the native executor pickles them, a closure would not go)
def _number_partition(tasks: int, size: Any, seed: int, params: dict) -> list[Blocks]:
    return _blocks(NUMBER_BLOCK, tasks, size, seed)


def _record_partition(tasks: int, size: Any, seed: int, params: dict) -> list[Blocks]:
    return _blocks(RECORD_BLOCK, tasks, size, seed)


# -- SIEVE -----------------------------------------------------------------------------------
NUMBER_BLOCK = 2_000_000


def _base_primes(limit: int) -> np.ndarray:
    """Primes ≤ limit, by a plain sieve (the task's own: every task computes them)."""
    is_prime = np.ones(limit + 1, dtype=bool)
    is_prime[:2] = False
    for p in range(2, math.isqrt(limit) + 1):
        if is_prime[p]:
            is_prime[p * p::p] = False
    return np.flatnonzero(is_prime)


def _sieve_map(chunk: Blocks) -> list[tuple[int, int]]:
    """(block, primes in it) for each block of this task."""
    base = _base_primes(math.isqrt(max(chunk.n - 1, 1))).tolist()
    out = []
    for b in range(chunk.first, chunk.stop):
        lo = b * NUMBER_BLOCK
        hi = lo + block_items(b, NUMBER_BLOCK, chunk.n)
        seg = np.ones(hi - lo, dtype=bool)
        for p in base:
            if p * p >= hi:
                break
            start = max(p * p, -(-lo // p) * p)
            seg[start - lo::p] = False
        if lo < 2:
            seg[:2 - lo] = False
        out.append((b, int(seg.sum())))
    return out


def _sieve_reduce(parts: list[list[tuple[int, int]]]) -> dict[str, Any]:
    blocks = sorted(x for part in parts for x in part)
    return {"blocks": len(blocks), "primes": sum(c for _, c in blocks)}


SIEVE = Workload(
    name="sieve", description="Primes below N counted with a segmented sieve in numpy",
    size_meaning="numbers", default_size=50_000_000, params=(),
    partition=_number_partition, map=_sieve_map, reduce=_sieve_reduce,
    summary=dict,
)

# -- JSONSTATS -------------------------------------------------------------------------------
RECORD_BLOCK = 10_000
CATEGORIES = ("books", "games", "garden", "kitchen", "music", "office", "outdoor", "pets",
              "shoes", "sports", "tools", "toys")


def _jsonstats_map(chunk: Blocks) -> dict[str, Any]:
    """Orders of this task's blocks written as JSON lines, read back, summed per category."""
    cents = [0] * len(CATEGORIES)
    flagged = 0
    for b in range(chunk.first, chunk.stop):
        m = block_items(b, RECORD_BLOCK, chunk.n)
        rng = np.random.default_rng([chunk.seed, b])
        customer = rng.integers(0, 50_000, size=m).tolist()
        category = rng.integers(0, len(CATEGORIES), size=m).tolist()
        quantity = rng.integers(1, 10, size=m).tolist()
        price = rng.integers(99, 20_000, size=m).tolist()
        flag = (rng.random(m) < 0.03).tolist()
        for i in range(m):
            line = json.dumps({"id": b * RECORD_BLOCK + i, "customer": customer[i],
                               "category": CATEGORIES[category[i]], "quantity": quantity[i],
                               "price_cents": price[i], "flagged": flag[i]})
            order = json.loads(line)
            cents[CATEGORIES.index(order["category"])] += (order["quantity"]
                                                           * order["price_cents"])
            flagged += order["flagged"]
    return {"cents": cents, "flagged": flagged}


def _jsonstats_reduce(parts: list[dict[str, Any]]) -> dict[str, Any]:
    cents = [sum(p["cents"][i] for p in parts) for i in range(len(CATEGORIES))]
    return {"revenue_cents": dict(zip(CATEGORIES, cents, strict=True)),
            "flagged": sum(p["flagged"] for p in parts)}


JSONSTATS = Workload(
    name="jsonstats", description="Orders written as JSON lines, parsed back, summed per "
                                  "category",
    size_meaning="records", default_size=75_000, params=(),
    partition=_record_partition, map=_jsonstats_map, reduce=_jsonstats_reduce,
    summary=dict,
)

# -- TOPK (pipeline) -------------------------------------------------------------------------
ROW_BLOCK = 200_000
FEATURES = 4
K = 1_000
WEIGHTS = np.array([0.7, -1.3, 0.4, 2.1])


def _rows_source(stage: str, tasks: int, size: Any, seed: int, params: dict) -> list[Blocks]:
    return _blocks(ROW_BLOCK, tasks, size, seed)


def _score(ctx: TaskContext, inputs: dict[str, list]) -> list[list[tuple[np.ndarray,
                                                                           np.ndarray]]]:
    """Rows scored by the linear model, (id, score) bucketed by id % readers."""
    src: Blocks = ctx.source
    buckets: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(ctx.fanout)]
    for b in range(src.first, src.stop):
        m = block_items(b, ROW_BLOCK, src.n)
        rng = np.random.default_rng([src.seed, b])
        ids = np.arange(b * ROW_BLOCK, b * ROW_BLOCK + m, dtype=np.int64)
        score = rng.standard_normal((m, FEATURES)) @ WEIGHTS
        owner = ids % ctx.fanout
        order = np.argsort(owner, kind="stable")
        cuts = np.searchsorted(owner[order], np.arange(1, ctx.fanout))
        for r, idx in enumerate(np.split(order, cuts)):
            buckets[r].append((ids[idx], score[idx]))
    return buckets


def _best(ids: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The K highest scores (all when fewer), best first; ties broken by id."""
    if len(score) > K:
        keep = np.argpartition(-score, K - 1)[:K]
        ids, score = ids[keep], score[keep]
    order = np.lexsort((ids, -score))
    return ids[order], score[order]


def _select(ctx: TaskContext, inputs: dict[str, list]) -> tuple[np.ndarray, np.ndarray]:
    """This reader's K best over its buckets."""
    pairs = [pair for part in inputs["score"] for pair in part]
    if not pairs:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return _best(np.concatenate([i for i, _ in pairs]), np.concatenate([s for _, s in pairs]))


def _merge(ctx: TaskContext, inputs: dict[str, list]) -> dict[str, Any]:
    """The K best of the readers' lists."""
    lists = inputs["select"]
    ids, score = _best(np.concatenate([i for i, _ in lists]),
                       np.concatenate([s for _, s in lists]))
    return {"k": int(len(ids)), "best_id": int(ids[0]), "kth_score": round(float(score[-1]), 9),
            "id_checksum": int(ids.sum() % (1 << 32))}


def _topk_summary(outputs: dict[str, list]) -> dict[str, Any]:
    return dict(outputs["merge"][0])


TOPK = Pipeline(
    name="topk", description="Rows scored by a linear model in numpy blocks, shuffled by id, "
                             "the best 1,000 kept per reader, then overall",
    size_meaning="rows", default_size=1_500_000, params=(),
    stages=(
        Stage("score", _score, inputs=(), default_tasks=2),
        Stage("select", _select, inputs=(Edge("score", "bucket"),), default_tasks=2),
        Stage("merge", _merge, inputs=(Edge("select", "all"),), default_tasks=1,
              max_tasks=1),
    ),
    source=_rows_source,
    summary=_topk_summary,
)
