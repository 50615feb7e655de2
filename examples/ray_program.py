"""A Ray program written the way Ray's documentation writes them, metered by one added line.

Everything below is ordinary Ray: a remote function, an actor, ``ray.get``. The only
rayjoule line is ``with rayjoule.measure(...) as m:``; afterwards ``m.result`` holds the
block's wall time, its energy per host (total, static, dynamic, overhead) and each Ray
task's and actor call's share, conserved exactly. The run is also stored in the results
store (``--db``).

    python examples/ray_program.py                 # --meter auto, --db rayjoule.sqlite
    python examples/ray_program.py --meter tdp --db /tmp/runs.sqlite
"""

from __future__ import annotations

import argparse
import math

import ray

import rayjoule


@ray.remote
def f(x: int) -> int:
    """Ray's first example, with ~20 ms of arithmetic so the task has energy to show."""
    checksum = 0
    for i in range(300_000):
        checksum = (checksum + i * x) % 1_000_003
    return x * x


@ray.remote
class Counter:
    def __init__(self) -> None:
        self.n = 0

    def increment(self) -> None:
        self.n += 1

    def read(self) -> int:
        return self.n


def main() -> None:
    ap = argparse.ArgumentParser(description="Meter a plain Ray program with rayjoule.measure")
    ap.add_argument("--meter", default="auto", help="auto (default), rapl, perf, tdp, ...")
    ap.add_argument("--db", default="rayjoule.sqlite", help="results store (default %(default)s)")
    args = ap.parse_args()

    with rayjoule.measure("ray-program", meter=args.meter, db=args.db) as m:
        futures = [f.remote(i) for i in range(40)]
        squares = ray.get(futures)

        counters = [Counter.remote() for _ in range(4)]
        for _ in range(5):
            [c.increment.remote() for c in counters]
        reads = ray.get([c.read.remote() for c in counters])

    print(f"squares: {squares[:6]}..., counters: {reads}")
    report(m.result)


def report(r: rayjoule.RunResult) -> None:
    """The figures a user reads first, each labelled with the meter that produced it."""
    e = r.energy
    label = f"{r.meter.name}, {r.meter.kind}"
    print(f"run {r.run_id} ({r.status}): {r.wall_s:.2f} s, {e.total_j:.1f} J [{label}]")
    print(f"  static {e.static_j:.1f} J + dynamic {e.dynamic_j:.1f} J; "
          f"tasks {e.tasks_j:.1f} J + overhead {e.overhead_j:.1f} J")
    for h in r.hosts:
        print(f"  host {h.host}: {h.energy.total_j:.1f} J, overhead {h.overhead_j:.1f} J, "
              f"idle {h.idle_w:.1f} W [{h.meter.name}, {h.meter.kind}]")
    print(f"  {len(r.tasks)} Ray tasks and actor calls ({r.summary['tasks_seen']} seen, "
          f"events dropped: {r.summary['events_dropped']}):")
    for s in r.stages:
        mean = s.energy.tasks_j / s.tasks if s.tasks else math.nan
        print(f"    {s.name:18s} {s.tasks:3d} × {mean:.3f} J = {s.energy.tasks_j:5.2f} J; "
              f"with its share of the overhead {s.energy.total_j:5.2f} J")
    tasks = math.fsum(t.energy_j for t in r.tasks)
    print(f"  conserved: tasks {tasks:.3f} J + overhead {e.overhead_j:.3f} J = "
          f"{tasks + e.overhead_j:.3f} J of {e.total_j:.3f} J")


if __name__ == "__main__":
    main()
