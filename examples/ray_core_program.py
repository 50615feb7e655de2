"""A Ray Core program whose keyword arguments are its knobs: tasks with ``num_cpus`` and a
chunk count.

The job: count the primes below ``limit`` by trial division (numpy), split into ``chunks``
ranges, one Ray task per range, each launched with ``.options(num_cpus=num_cpus)``.

* ``chunks`` — more chunks balance the load better, but every task is a scheduling round
  trip and, when more run at once than there are idle workers, a new worker process
  (~0.5 CPU-s to start Python and import Ray and numpy).
* ``num_cpus`` — CPUs each task reserves: a fraction packs more tasks than cores (more
  worker processes, more contention), 1 runs one per core.

The defaults (64 chunks of 0.25 CPU: "lots of small tasks, let Ray pack them") are what a
user might write first; on a small machine they start many workers for no speed-up.

    python -m rayjoule.tune --program examples.ray_core_program:count_primes \\
        --space examples/ray_core_program.toml --trials 10
    python examples/ray_core_program.py              # one metered run at the defaults
"""

from __future__ import annotations

from typing import Any

import numpy as np

LIMIT = 3_000_000


def _count(lo: int, hi: int) -> int:
    """Primes in [lo, hi), by trial division with the primes below sqrt(hi)."""
    n = np.arange(max(lo, 2), hi, dtype=np.int64)
    root = int(hi ** 0.5) + 1
    small = np.arange(2, root + 1)
    small = small[[all(p % q for q in range(2, int(p ** 0.5) + 1)) for p in small]]
    alive = np.ones(n.size, dtype=bool)
    for p in small:
        alive &= (n % p != 0) | (n == p)
    return int(alive.sum())


def count_primes(chunks: int = 64, num_cpus: float = 0.25, limit: int = LIMIT) -> dict[str, Any]:
    """Count primes below ``limit`` with ``chunks`` Ray tasks of ``num_cpus`` CPUs each."""
    import ray

    count = ray.remote(_count)
    edges = np.linspace(0, limit, chunks + 1, dtype=np.int64)
    refs = [count.options(num_cpus=num_cpus, name="count_primes").remote(int(lo), int(hi))
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    return {"limit": limit, "primes": sum(ray.get(refs))}


def main() -> None:
    """One metered run at the defaults (or the settings given)."""
    import argparse

    import rayjoule

    ap = argparse.ArgumentParser(description="Run the prime count once under rayjoule.measure")
    ap.add_argument("--chunks", type=int, default=64)
    ap.add_argument("--num-cpus", type=float, default=0.25)
    ap.add_argument("--meter", default="auto")
    ap.add_argument("--db", default="rayjoule.sqlite")
    args = ap.parse_args()
    with rayjoule.measure("ray-core-primes", meter=args.meter, db=args.db,
                          background=False) as m:
        out = count_primes(chunks=args.chunks, num_cpus=args.num_cpus)
    r = m.result
    print(out)
    print(f"run {r.run_id}: {r.wall_s:.2f} s, {r.energy.total_j:.1f} J "
          f"[{r.meter.name}, {r.meter.kind}]")
    for s in r.stages:
        print(f"  {s.name:20s} {s.tasks:4d} tasks {s.energy.total_j:7.1f} J")


if __name__ == "__main__":
    main()
