"""The FIFTH set of benchmark-only workloads for ``bench_unseen_predict.py``.

Written on 2026-12-07 (third session) after run 4, two more negative probes and run 5 had
been seen, and committed before anything ran on them: rayjoule's models were never
developed or tuned on these (the model and the profiling design did not change since run 4).
Registered by import path, as a user's own (``--workload
experiments.unseen_workloads5:COMPRESS``), with the built-ins' determinism rule: work is cut
into fixed blocks seeded by ``[seed, block]``, never by task, so any task count gives the
same summary. Everyday shapes again:

* ``COMPRESS`` — zlib (level 6) over generated text: per block of 256 KB, words drawn from
  a 2,000-word vocabulary joined by spaces, compressed; the block's compressed size is
  returned and the driver adds them. C compute (zlib), linear in the text. Estimate at the
  target (48 MB of text, 192 blocks): ~2 ms to generate and ~8 ms to compress a block →
  ~1.9 s on one task, ~1 s on two slots. Likely best: 2 tasks.
* ``ACCESSLOG`` — web-server access lines generated per block of 20,000 (an f-string each)
  and parsed with a compiled regular expression (``re``: GIL-bound Python calls, ~2 µs a
  line); per task the count of each status code and the bytes served; the driver adds six
  counters. Estimate at the target (600,000 lines): ~2.4 s on one task. Likely best: 2.
* ``FEATURES`` (pipeline) — ``clean`` draws rows of a key and 8 numeric columns in numpy
  blocks of 100,000, standardises them per block and applies ``log1p``/``tanh``, then
  partitions the rows by key into the readers' buckets (a stable argsort of the bucket ids);
  ``aggregate`` (the bucket reader) sums each feature per key over its buckets with
  ``np.bincount`` into dense tables of 40,000 keys (a per-task cost that does not shrink
  with more tasks: each task allocates and returns 8 tables of all keys); ``report`` (one
  task, ``max_tasks=1``) adds the readers' dense tables — its cost grows with the
  aggregate's task count (u × 40,000 × 8 additions), so the fixed-stage law that grows with
  the upstream's tasks *should* be chosen for it here. Estimate at the target (4,000,000
  rows): clean ~0.6 s on one task, aggregate ~0.3 s, report ~5 ms per aggregate task.
  Likely best: clean 2, aggregate 2.

Sweeps (bench): COMPRESS and ACCESSLOG 1, 2, 3, 4, 6, 8, 16 tasks; FEATURES clean ×
aggregate in {1, 2, 4, 8}². None of these figures were measured: they are arithmetic on
per-operation costs, written before any run, and the results file says what the runs found.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads import Edge, Pipeline, Stage, TaskContext
from workloads._base import Workload, block_items, split_blocks


@dataclass(frozen=True)
class Blocks:
    """Blocks ``[first, stop)`` of ``n`` items (KB of text, lines or rows)."""

    n: int
    seed: int
    first: int
    stop: int


def _blocks(block: int, tasks: int, size: Any, seed: int) -> list[Blocks]:
    n = int(size)
    return [Blocks(n, seed, a, b) for a, b in split_blocks(n, block, tasks)]


# (module-level partitions: the native executor pickles them, a closure would not go)
def _text_partition(tasks: int, size: Any, seed: int, params: dict) -> list[Blocks]:
    return _blocks(TEXT_BLOCK_KB, tasks, size, seed)


def _line_partition(tasks: int, size: Any, seed: int, params: dict) -> list[Blocks]:
    return _blocks(LINE_BLOCK, tasks, size, seed)


# -- COMPRESS --------------------------------------------------------------------------------
TEXT_BLOCK_KB = 256
VOCABULARY = [f"w{i:x}{'abcdefgh'[i % 8] * (1 + i % 7)}".encode() for i in range(2_000)]


def _compress_map(chunk: Blocks) -> list[tuple[int, int, int]]:
    """(block, bytes of text, bytes compressed) per block of this task."""
    out = []
    for b in range(chunk.first, chunk.stop):
        kb = block_items(b, TEXT_BLOCK_KB, chunk.n)
        rng = np.random.default_rng([chunk.seed, b])
        # Zipf-like word frequencies: compressible text, as logs and documents are
        words = np.minimum(rng.zipf(1.3, size=kb * 1024 // 5), len(VOCABULARY)) - 1
        text = b" ".join(VOCABULARY[w] for w in words.tolist())[:kb * 1024]
        out.append((b, len(text), len(zlib.compress(text, 6))))
    return out


def _compress_reduce(parts: list[list[tuple[int, int, int]]]) -> dict[str, Any]:
    blocks = sorted(x for part in parts for x in part)
    raw = sum(r for _, r, _ in blocks)
    packed = sum(c for _, _, c in blocks)
    return {"blocks": len(blocks), "raw_bytes": raw, "compressed_bytes": packed}


COMPRESS = Workload(
    name="compress", description="Generated text compressed with zlib in 256 KB blocks",
    size_meaning="KB of text", default_size=12_288, params=(),
    partition=_text_partition, map=_compress_map, reduce=_compress_reduce,
    summary=dict,
)

# -- ACCESSLOG -------------------------------------------------------------------------------
LINE_BLOCK = 20_000
LINE = re.compile(r'^(\d+\.\d+\.\d+\.\d+) - - \[([^\]]+)\] "(GET|POST|PUT) (\S+) HTTP/1\.1" '
                  r"(\d{3}) (\d+)$")
STATUSES = (200, 200, 200, 200, 304, 404, 500, 301)


def _accesslog_map(chunk: Blocks) -> Counter:
    """Lines of this task's blocks generated and parsed: count per status, bytes served."""
    counts: Counter = Counter()
    for b in range(chunk.first, chunk.stop):
        m = block_items(b, LINE_BLOCK, chunk.n)
        rng = np.random.default_rng([chunk.seed, b])
        ips = rng.integers(0, 256, size=(m, 2)).tolist()
        paths = rng.integers(0, 10_000, size=m).tolist()
        status = rng.integers(0, len(STATUSES), size=m).tolist()
        sizes = rng.integers(100, 100_000, size=m).tolist()
        for (x, y), p, s, n in zip(ips, paths, status, sizes, strict=True):
            line = (f'10.0.{x}.{y} - - [07/Dec/2026:10:{p % 60:02d}:00 +0000] '
                    f'"GET /item/{p} HTTP/1.1" {STATUSES[s]} {n}')
            hit = LINE.match(line)
            if hit is not None:
                counts[int(hit.group(5))] += 1
                counts["bytes"] += int(hit.group(6))
    return counts


def _accesslog_reduce(parts: list[Counter]) -> dict[str, Any]:
    total: Counter = Counter()
    for part in parts:
        total.update(part)
    return {str(k): v for k, v in sorted(total.items(), key=lambda kv: str(kv[0]))}


ACCESSLOG = Workload(
    name="accesslog", description="Web-server access lines generated and parsed with a regex",
    size_meaning="lines", default_size=150_000, params=(),
    partition=_line_partition, map=_accesslog_map, reduce=_accesslog_reduce,
    summary=dict,
)

# -- FEATURES (pipeline) ---------------------------------------------------------------------
ROW_BLOCK = 100_000
KEYS = 40_000
COLUMNS = 8


def _rows_source(stage: str, tasks: int, size: Any, seed: int, params: dict) -> list[Blocks]:
    return _blocks(ROW_BLOCK, tasks, size, seed)


def _clean(ctx: TaskContext, inputs: dict[str, list]) -> list[list[tuple[np.ndarray,
                                                                           np.ndarray]]]:
    """Rows standardised per block and transformed, then bucketed by key (key % readers)."""
    src: Blocks = ctx.source
    buckets: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(ctx.fanout)]
    for b in range(src.first, src.stop):
        m = block_items(b, ROW_BLOCK, src.n)
        rng = np.random.default_rng([src.seed, b])
        keys = rng.integers(0, KEYS, size=m)
        x = rng.lognormal(0.0, 1.0, size=(m, COLUMNS))
        x = (x - x.mean(axis=0)) / x.std(axis=0)
        x = np.tanh(x) + np.log1p(np.abs(x))
        owner = keys % ctx.fanout
        order = np.argsort(owner, kind="stable")
        cuts = np.searchsorted(owner[order], np.arange(1, ctx.fanout))
        for r, idx in enumerate(np.split(order, cuts)):
            buckets[r].append((keys[idx], x[idx]))
    return buckets


def _aggregate(ctx: TaskContext, inputs: dict[str, list]) -> np.ndarray:
    """Per-key sums of every feature over this task's buckets: a dense (COLUMNS, KEYS) table."""
    table = np.zeros((COLUMNS, KEYS))
    for part in inputs["clean"]:
        for keys, x in part:
            for c in range(COLUMNS):
                table[c] += np.bincount(keys, weights=x[:, c], minlength=KEYS)
    return table


def _report(ctx: TaskContext, inputs: dict[str, list]) -> dict[str, Any]:
    """The readers' tables added: per-feature totals and the key with the largest sum."""
    total = np.zeros((COLUMNS, KEYS))
    for table in inputs["aggregate"]:
        total += table
    return {"feature_sums": [round(float(v), 3) for v in total.sum(axis=1)],
            "top_key": int(np.argmax(total[0]))}


def _features_summary(outputs: dict[str, list]) -> dict[str, Any]:
    return dict(outputs["report"][0])


FEATURES = Pipeline(
    name="features", description="Numeric rows cleaned in numpy blocks, shuffled by key, "
                                 "summed per key into dense tables, the tables added",
    size_meaning="rows", default_size=1_000_000, params=(),
    stages=(
        Stage("clean", _clean, inputs=(), default_tasks=2),
        Stage("aggregate", _aggregate, inputs=(Edge("clean", "bucket"),), default_tasks=2),
        Stage("report", _report, inputs=(Edge("aggregate", "all"),), default_tasks=1,
              max_tasks=1),
    ),
    source=_rows_source,
    summary=_features_summary,
)
