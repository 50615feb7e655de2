"""primes: the segmented sieve against known values and a brute-force count."""

from __future__ import annotations

import pytest

import workloads
from workloads.primes import SEGMENT


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def test_pi_of_ten_million():
    assert workloads.execute("primes", size=10**7, tasks=3) == {
        "limit": 10**7, "count": 664_579, "max_prime": 9_999_991}


def test_pi_of_one_hundred():
    assert workloads.execute("primes", size=100, tasks=4) == {
        "limit": 100, "count": 25, "max_prime": 97}


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 29, 30, 31, 1000])
def test_small_limits_match_brute_force(limit):
    primes = [n for n in range(limit + 1) if is_prime(n)]
    assert workloads.execute("primes", size=limit, tasks=2) == {
        "limit": limit, "count": len(primes), "max_prime": max(primes, default=0)}


def test_segment_boundaries():
    # 1048573 is the largest prime below 2**20 = SEGMENT; 1048583 the smallest above.
    assert SEGMENT == 2**20
    below = workloads.execute("primes", size=SEGMENT, tasks=2)
    above = workloads.execute("primes", size=SEGMENT + 7, tasks=2)
    assert below["max_prime"] == 1_048_573 and above["max_prime"] == 1_048_583
    assert above["count"] == below["count"] + 1 == 82_025 + 1
