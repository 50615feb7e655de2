"""Word count with a shuffle: map (count per chunk) -> reduce by key (R buckets) -> top-k.

The input is a deterministic Zipf-distributed corpus of ``size`` words (a vocabulary of
pronounceable synthetic words, word ``r`` drawn with probability proportional to
``1 / (r + 1) ** zipf``), generated in blocks of :data:`BLOCK_WORDS` from
``default_rng([seed, block])``; or the user's text files given as ``input`` (a file, a
folder, or an ``s3://bucket/prefix``), read in byte ranges of :data:`BLOCK_BYTES`.

* ``map``: tokenise its blocks (ASCII whitespace, lower-cased, punctuation stripped) and
  count; send word ``w`` to bucket ``crc32(w) % R`` (a stable hash: Python's ``hash`` of a
  str changes per process), one bucket per ``reduce`` task.
* ``reduce`` (bucket route): merge its bucket from every map task; keep its top-k, totals
  and an order-free checksum of its whole count table.
* ``top`` (1 task): merge the reducers' results.

Counts are integers and every word is counted exactly once whatever the grouping, so the
summary is identical for any parallelism of any stage.
"""

from __future__ import annotations

import functools
import heapq
import string
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads._base import Param, ParamValue, Size, WorkloadError, split_blocks, split_even
from workloads._datastore import DataStore
from workloads._pipeline import Edge, Pipeline, Stage, TaskContext

BLOCK_WORDS = 16_384
"""Words per generated block of the synthetic corpus."""

BLOCK_BYTES = 1 << 20
"""Bytes per range of a user's input file; a word belongs to the range its first byte is in."""

_SYLLABLES = tuple(c + v for c in "bdfgklmnprstvz" for v in "aeiou")[:64]
_PUNCTUATION = string.punctuation + "“”‘’«»…"


@dataclass(frozen=True)
class Synthetic:
    """A ``map`` task's share of the synthetic corpus: blocks ``[first, stop)``."""

    words: int
    seed: int
    vocabulary: int
    zipf: float
    first: int
    stop: int


@dataclass(frozen=True)
class Ranges:
    """A ``map`` task's share of a user's input: ``(key, start, stop)`` byte ranges."""

    uri: str
    ranges: tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class Counts:
    """A reducer's (or the whole job's) totals, top words and table checksum."""

    words: int
    distinct: int
    checksum: int
    top: tuple[tuple[str, int], ...]


def word(rank: int) -> str:
    """The synthetic word of a vocabulary rank: its base-64 digits as syllables (unique).

    >>> [word(r) for r in (0, 1, 64)]
    ['bebeba', 'bebebe', 'bebiba']
    """
    n = rank + 64 * 64 + 64  # at least two syllables, never a leading zero digit
    out = []
    while n:
        n, d = divmod(n, 64)
        out.append(_SYLLABLES[d])
    return "".join(reversed(out))


@functools.lru_cache(maxsize=4)
def _vocabulary(size: int, zipf: float) -> tuple[np.ndarray, np.ndarray]:
    """The words (as bytes) and the cumulative Zipf probabilities of a vocabulary."""
    words = np.array([word(r).encode() for r in range(size)], dtype=object)
    weights = 1.0 / np.arange(1, size + 1) ** zipf
    cdf = np.cumsum(weights)
    return words, cdf / cdf[-1]


def block_text(block: int, words: int, seed: int, vocabulary: int, zipf: float) -> bytes:
    """Block ``block`` of the synthetic corpus as text: words separated by spaces/newlines."""
    n = max(0, min(BLOCK_WORDS, words - block * BLOCK_WORDS))
    vocab, cdf = _vocabulary(vocabulary, zipf)
    rng = np.random.default_rng([seed, block])
    ranks = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), vocabulary - 1)
    lines = [b" ".join(vocab[ranks[i:i + 12]]) for i in range(0, n, 12)]
    return b"\n".join(lines) + b"\n"


def count_words(data: bytes) -> Counter[str]:
    """Tokenise on ASCII whitespace, lower-case, strip punctuation; count.

    >>> dict(count_words(b"The cat, the HAT!\\n-- cat"))
    {'the': 2, 'cat': 2, 'hat': 1}
    """
    counts: Counter[str] = Counter()
    for token, n in Counter(data.split()).items():  # normalise each distinct token once
        text = token.decode("utf-8", "replace").lower().strip(_PUNCTUATION)
        if text:
            counts[text] += n
    return counts


def source(stage: str, tasks: int, size: Size, seed: int,
           params: dict[str, ParamValue]) -> list[Synthetic | Ranges]:
    """Synthetic blocks, or the user's files cut into byte ranges, shared among map tasks."""
    if params["input"] is None:
        vocabulary, zipf = int(params["vocabulary"]), float(params["zipf"])  # type: ignore[arg-type]
        return [Synthetic(int(size), seed, vocabulary, zipf, first, stop)
                for first, stop in split_blocks(int(size), BLOCK_WORDS, tasks)]
    uri = str(params["input"])
    pieces = [(key, start, min(start + BLOCK_BYTES, length))
              for key, length in DataStore.from_uri(uri).list_inputs()
              for start in range(0, length, BLOCK_BYTES)]
    return [Ranges(uri, tuple(pieces[a:b])) for a, b in split_even(len(pieces), tasks)]


def map_counts(ctx: TaskContext, inputs: dict[str, list[Any]]) -> list[dict[str, int]]:
    """Count this task's words and split the counts into ``ctx.fanout`` buckets by crc32."""
    src = ctx.source
    counts: Counter[str] = Counter()
    if isinstance(src, Synthetic):
        for b in range(src.first, src.stop):
            counts.update(count_words(block_text(b, src.words, src.seed, src.vocabulary,
                                                 src.zipf)))
    else:
        store = DataStore.from_uri(src.uri)
        for key, start, stop in src.ranges:
            counts.update(count_words(read_range(store, key, start, stop)))
    buckets: list[dict[str, int]] = [{} for _ in range(ctx.fanout)]
    for w, n in counts.items():
        buckets[bucket_of(w, ctx.fanout)][w] = n
    return buckets


def bucket_of(w: str, buckets: int) -> int:
    """The reducer of a word: a hash that is the same in every process and on every host."""
    return zlib.crc32(w.encode()) % buckets


def read_range(store: DataStore, key: str, start: int, stop: int) -> bytes:
    """The words whose first byte lies in ``[start, stop)`` of a file.

    A word cut by ``start`` belongs to the previous range; one cut by ``stop`` is read to
    its end, however far that is.
    """
    data = store.read_bytes(key, start, stop - start)
    if start > 0 and not store.read_bytes(key, start - 1, 1).isspace():
        cut = _first_space(data)
        data = data[cut:] if cut >= 0 else b""
    if data and not data[-1:].isspace():
        pos = stop
        while True:
            more = store.read_bytes(key, pos, 4096)
            cut = _first_space(more)
            if cut >= 0 or not more:
                data += more[:cut] if cut >= 0 else more
                break
            data += more
            pos += len(more)
    return data


def _first_space(data: bytes) -> int:
    """Index of the first ASCII whitespace byte, or -1."""
    for i, byte in enumerate(data):
        if byte in b" \t\n\r\x0b\x0c":
            return i
    return -1


def reduce_counts(ctx: TaskContext, inputs: dict[str, list[Any]]) -> Counts:
    """Merge this reducer's bucket from every map task; summarise it."""
    counts: Counter[str] = Counter()
    for part in inputs["map"]:
        counts.update(part)
    checksum = sum(zlib.crc32(f"{w}\t{n}".encode()) for w, n in counts.items()) % 2**32
    return Counts(sum(counts.values()), len(counts), checksum, _top(counts.items(), ctx))


def _top(items: Any, ctx: TaskContext) -> tuple[tuple[str, int], ...]:
    """The ``top_k`` most frequent words; ties go to the alphabetically first word."""
    return tuple(heapq.nsmallest(int(ctx.params["top_k"]), items, key=lambda wn: (-wn[1], wn[0])))


def top(ctx: TaskContext, inputs: dict[str, list[Any]]) -> Counts:
    """Merge the reducers: their key sets are disjoint, so totals and top-k simply combine."""
    parts: list[Counts] = inputs["reduce"]
    return Counts(
        sum(p.words for p in parts),
        sum(p.distinct for p in parts),
        sum(p.checksum for p in parts) % 2**32,
        _top([wn for p in parts for wn in p.top], ctx),
    )


def summary(outputs: dict[str, list[Any]]) -> dict[str, Any]:
    """Words, distinct words, the top words as ``word:count`` and the table's checksum."""
    (counts,) = outputs["top"]
    return {
        "words": counts.words,
        "distinct": counts.distinct,
        "top": " ".join(f"{w}:{n}" for w, n in counts.top),
        "checksum": counts.checksum,
    }


def prepare(size: Size | None, params: dict[str, ParamValue]) -> Size:
    """With ``input``, the size is the input's total bytes (so size models still apply)."""
    if params["input"] is None:
        return PIPELINE.default_size if size is None else size
    uri = str(params["input"]).strip()
    if not uri:
        raise WorkloadError("parameter 'input' is empty; give a file, folder or s3:// prefix")
    files = DataStore.from_uri(uri).list_inputs()
    total = sum(length for _, length in files)
    if not files:
        raise WorkloadError(f"wordcount input {uri!r} holds no files")
    if size is not None and int(size) != total:
        raise WorkloadError(f"size is set by the input ({total} bytes in {len(files)} files); "
                            f"leave it out, not {size}")
    return total


PIPELINE = Pipeline(
    name="wordcount",
    description="Word count with a shuffle: count per chunk, reduce by key hash, top-k",
    size_meaning="words of the synthetic Zipf corpus (with input=...: the input's bytes)",
    default_size=4_000_000,
    params=(
        Param("input", str, None, "text files to count: a file, a folder or s3://bucket/prefix "
              "(default: the synthetic corpus)"),
        Param("vocabulary", int, 50_000, "distinct words of the synthetic corpus", minimum=1),
        Param("zipf", float, 1.1, "Zipf exponent of the synthetic corpus", above=0),
        Param("top_k", int, 10, "most frequent words reported", minimum=1),
    ),
    stages=(
        Stage("map", map_counts, (), 2, None, "count words per chunk, bucket them by key"),
        Stage("reduce", reduce_counts, (Edge("map", "bucket"),), 2, None,
              "merge one bucket of keys from every map task"),
        Stage("top", top, (Edge("reduce", "all"),), 1, 1, "merge totals and top words"),
    ),
    source=source,
    summary=summary,
    prepare=prepare,
)
