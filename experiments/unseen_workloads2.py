"""The SECOND set of benchmark-only workloads for ``bench_unseen_predict.py``.

Written after the first set (``unseen_workloads.py``) had been seen and the model changed
on its account (the ``waves`` form), and committed before anything ran on them: rayjoule's
models were never developed or tuned on these. Registered by import path, as a user's own
(``--workload experiments.unseen_workloads2:FETCH``), with the built-ins' determinism rule:
work is cut into fixed blocks seeded by ``[seed, block]``, never by task.

* ``FETCH`` — I/O-ish, with a fixed per-task cost: each task first opens a "connection"
  (a 120 ms handshake: waiting, not computing), then per block of 256 records waits 4 ms
  of latency (a round trip) and parses the block's JSON records in pure Python.
* ``STENCIL`` — memory-bound numpy: per block a seeded 1024 × 1024 float64 grid (8 MB, far
  beyond the caches) relaxed by 10 Jacobi sweeps of elementwise slicing; the grids' sums.
  Two tasks at once share the memory bandwidth, so they do not run twice as fast.
* ``INDEX`` (a two-stage pipeline, no shuffle) — ``tokenize`` generates documents of
  Zipf-distributed words per block and counts each word (a ``Counter`` per task: more tasks,
  more partial tables); ``merge`` takes a contiguous share of those tables (route ``split``)
  and adds them up; the summary adds the merged tables.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads import Edge, Pipeline, Stage, TaskContext
from workloads._base import Workload, block_items, split_blocks

# -- FETCH -----------------------------------------------------------------------------------
FETCH_BLOCK = 256
HANDSHAKE_S = 0.12
LATENCY_S = 0.004


@dataclass(frozen=True)
class Records:
    """Blocks ``[first, stop)`` of n records."""

    n: int
    seed: int
    first: int
    stop: int


def _fetch_partition(tasks: int, size: Any, seed: int, params: dict) -> list[Records]:
    n = int(size)
    return [Records(n, seed, a, b) for a, b in split_blocks(n, FETCH_BLOCK, tasks)]


def _payload(seed: int, b: int, m: int) -> str:
    """The block's records as the JSON text a service would send back."""
    rng = np.random.default_rng([seed, b])
    ids = rng.integers(0, 1 << 31, size=m).tolist()
    prices = np.round(rng.gamma(2.0, 15.0, size=m), 2).tolist()
    tags = rng.integers(0, 50, size=(m, 3)).tolist()
    return json.dumps([{"id": i, "price": p, "tags": t, "name": f"item-{i % 9973}"}
                       for i, p, t in zip(ids, prices, tags, strict=True)])


def _fetch_map(chunk: Records) -> tuple[int, float, int]:
    if chunk.first >= chunk.stop:
        return 0, 0.0, 0
    time.sleep(HANDSHAKE_S)  # the connection each task opens before its first request
    count, total, tagged = 0, 0.0, 0
    for b in range(chunk.first, chunk.stop):
        time.sleep(LATENCY_S)  # the request's round trip
        for rec in json.loads(_payload(chunk.seed, b, block_items(b, FETCH_BLOCK, chunk.n))):
            count += 1
            total += rec["price"]
            tagged += 7 in rec["tags"]
    return count, total, tagged


def _fetch_reduce(parts: list[tuple[int, float, int]]) -> tuple[int, float, int]:
    return sum(p[0] for p in parts), sum(p[1] for p in parts), sum(p[2] for p in parts)


def _fetch_summary(r: tuple[int, float, int]) -> dict[str, Any]:
    return {"records": r[0], "price_total": round(r[1], 2), "tagged_7": r[2]}


FETCH = Workload(
    name="fetch", description="Fetch-and-parse records: a handshake per task, latency per "
                              "block, JSON parsing (pure Python)",
    size_meaning="records", default_size=20_000, params=(),
    partition=_fetch_partition, map=_fetch_map, reduce=_fetch_reduce, summary=_fetch_summary,
)

# -- STENCIL ---------------------------------------------------------------------------------
GRID = 1024
CELLS = GRID * GRID
SWEEPS = 10


@dataclass(frozen=True)
class Grids:
    """Blocks ``[first, stop)``: one GRID × GRID grid each (size = cells)."""

    n: int
    seed: int
    first: int
    stop: int


def _stencil_partition(tasks: int, size: Any, seed: int, params: dict) -> list[Grids]:
    n = int(size)
    return [Grids(n, seed, a, b) for a, b in split_blocks(n, CELLS, tasks)]


def _stencil_map(chunk: Grids) -> float:
    total = 0.0
    for b in range(chunk.first, chunk.stop):
        rows = max(3, block_items(b, CELLS, chunk.n) // GRID)
        u = np.random.default_rng([chunk.seed, b]).random((rows, GRID))
        for _ in range(SWEEPS):
            u[1:-1, 1:-1] = 0.25 * (u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:])
        total += float(u.sum())
    return total


def _stencil_reduce(parts: list[float]) -> float:
    return float(sum(sorted(parts)))


def _stencil_summary(total: float) -> dict[str, float]:
    return {"grid_sum": round(total, 3)}


STENCIL = Workload(
    name="stencil", description="Jacobi relaxation of 1024 x 1024 grids (numpy, "
                                "memory-bound)",
    size_meaning="cells", default_size=8 * CELLS, params=(),
    partition=_stencil_partition, map=_stencil_map, reduce=_stencil_reduce,
    summary=_stencil_summary,
)

# -- INDEX (pipeline) ------------------------------------------------------------------------
DOC_BLOCK, WORDS_PER_DOC, VOCAB = 200, 120, 20_000


@dataclass(frozen=True)
class Docs:
    """Blocks ``[first, stop)`` of n documents."""

    n: int
    seed: int
    first: int
    stop: int


def _docs_source(stage: str, tasks: int, size: Any, seed: int, params: dict) -> list[Docs]:
    n = int(size)
    return [Docs(n, seed, a, b) for a, b in split_blocks(n, DOC_BLOCK, tasks)]


def _tokenize(ctx: TaskContext, inputs: dict[str, list]) -> Counter:
    src: Docs = ctx.source
    counts: Counter = Counter()
    for b in range(src.first, src.stop):
        m = block_items(b, DOC_BLOCK, src.n)
        rng = np.random.default_rng([src.seed, b])
        ranks = (rng.zipf(1.2, size=(m, WORDS_PER_DOC)) % VOCAB).tolist()
        for doc in ranks:
            text = " ".join(f"w{r}" for r in doc)
            counts.update(text.split())
    return counts


def _merge(ctx: TaskContext, inputs: dict[str, list]) -> Counter:
    out: Counter = Counter()
    for part in inputs["tokenize"]:
        out.update(part)
    return out


def _index_summary(outputs: dict[str, list]) -> dict[str, Any]:
    total: Counter = Counter()
    for part in outputs["merge"]:
        total.update(part)
    word, top = min(total.items(), key=lambda kv: (-kv[1], kv[0])) if total else ("", 0)
    return {"words": sum(total.values()), "distinct": len(total), "top_word": word,
            "top_count": top}


INDEX = Pipeline(
    name="index", description="Word counts of generated documents: tokenize, then merge "
                              "the partial tables",
    size_meaning="documents", default_size=4_000, params=(),
    stages=(
        Stage("tokenize", _tokenize, inputs=(), default_tasks=2),
        Stage("merge", _merge, inputs=(Edge("tokenize", "split"),), default_tasks=1),
    ),
    source=_docs_source,
    summary=_index_summary,
)
