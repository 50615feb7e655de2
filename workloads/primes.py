"""Count the primes <= limit with a segmented sieve of Eratosthenes (numpy).

The integers ``0..limit`` are cut into fixed segments of :data:`SEGMENT`; tasks get
contiguous runs of segments and sieve each with the base primes <= sqrt(limit), which every
task computes itself (a few thousand numbers). Counts are integers and the largest prime is
a max, so the result does not depend on how segments are grouped.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads._base import ParamValue, Size, Workload, split_blocks

SEGMENT = 1 << 20
"""Integers per segment (1 MiB of flags): large enough that the Python loop over base primes
is cheap next to numpy's strided writes (2x faster than 256 KiB segments at 10^9)."""


@dataclass(frozen=True)
class Chunk:
    """Segments ``[first, stop)`` of ``0..limit``."""

    limit: int
    first: int
    stop: int


@dataclass(frozen=True)
class Partial:
    """Primes counted in some segments, and the largest of them (0 if none)."""

    limit: int
    count: int
    max_prime: int


def partition(tasks: int, size: Size, seed: int, params: dict[str, ParamValue]) -> list[Chunk]:
    """Give each task a contiguous run of segments (nothing is random: the seed is unused)."""
    limit = int(size)
    return [Chunk(limit, first, stop) for first, stop in split_blocks(limit + 1, SEGMENT, tasks)]


@functools.lru_cache(maxsize=8)
def base_primes(bound: int) -> np.ndarray:
    """All primes <= ``bound`` by a plain sieve (cached: every segment of a task needs them)."""
    flags = np.ones(bound + 1, dtype=bool)
    flags[: min(2, bound + 1)] = False
    for p in range(2, math.isqrt(bound) + 1):
        if flags[p]:
            flags[p * p :: p] = False
    return np.flatnonzero(flags)


def map(chunk: Chunk) -> Partial:
    """Sieve the chunk's segments; count their primes and find the largest."""
    primes = base_primes(math.isqrt(chunk.limit)).tolist()
    count = max_prime = 0
    for s in range(chunk.first, chunk.stop):
        lo = s * SEGMENT
        hi = min(lo + SEGMENT, chunk.limit + 1)
        flags = sieve_segment(lo, hi, primes)
        n = int(np.count_nonzero(flags))
        if n:
            count += n
            max_prime = lo + int(flags.size - 1 - np.argmax(flags[::-1]))
    return Partial(chunk.limit, count, max_prime)


def sieve_segment(lo: int, hi: int, primes: list[int]) -> np.ndarray:
    """Flags for ``lo..hi-1``: True where the number is prime, given all primes <= sqrt(hi-1)."""
    flags = np.ones(hi - lo, dtype=bool)
    if lo < 2:
        flags[: 2 - lo] = False
    for p in primes:
        square = p * p
        if square >= hi:
            break
        start = max(square, -(-lo // p) * p)
        flags[start - lo :: p] = False
    return flags


def reduce(partials: list[Partial]) -> Partial:
    """Sum the counts and keep the largest prime."""
    return Partial(
        partials[0].limit,
        sum(p.count for p in partials),
        max(p.max_prime for p in partials),
    )


def summary(result: Partial) -> dict[str, Any]:
    """``count`` = pi(limit); ``max_prime`` = largest prime <= limit (0 if none)."""
    return {"limit": result.limit, "count": result.count, "max_prime": result.max_prime}


WORKLOAD = Workload(
    name="primes",
    description="Count the primes up to a limit with a segmented numpy sieve",
    size_meaning="upper limit (inclusive)",
    default_size=10**9,
    params=(),
    partition=partition,
    map=map,
    reduce=reduce,
    summary=summary,
)
