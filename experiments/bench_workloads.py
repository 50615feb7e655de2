"""Serial time of each workload at its default size (tasks=1, one process, one core).

The defaults are tuned so that this takes roughly 2-10 s per workload: long enough for
energy meters to resolve, short enough for many tuning trials. Setup that a run does not
repeat (generating the cached synthetic Airbnb corpus) happens before the clock starts.

    python experiments/bench_workloads.py                  # all workloads
    python experiments/bench_workloads.py pi stock --repeat 3 --size 300000

Writes ``experiments/results/bench_workloads.csv`` (one row per run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import workloads  # noqa: E402
from experiments._results import RESULTS as RESULTS_DIR  # noqa: E402
from experiments._results import write_rows  # noqa: E402

RESULTS = RESULTS_DIR / "bench_workloads.csv"


def time_one(name: str, size: str | None, params: dict[str, object]) -> tuple[float, dict]:
    """Seconds for one serial ``execute`` (after untimed setup), and its summary."""
    wl = workloads.get(name)
    resolved, values = wl.validate(size, 1, params)
    wl.partition(1, resolved, 0, values)  # untimed: e.g. builds the cached corpus
    start = time.perf_counter()
    summary = workloads.execute(name, size=resolved, tasks=1, **values)
    return time.perf_counter() - start, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="workloads to time (default: all)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per workload (default 1)")
    parser.add_argument("--size", help="override the default size (with one workload)")
    parser.add_argument("--param", action="append", default=[], metavar="K=V",
                        help="workload parameter (repeatable)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"CSV path (default {RESULTS})")
    args = parser.parse_args(argv)
    selected = args.names or workloads.names()

    rows = []
    for name in selected:
        params = workloads.parse_params(workloads.get(name), args.param)
        size, _ = workloads.get(name).validate(args.size, 1, params)
        times = []
        for repeat in range(args.repeat):
            seconds, summary = time_one(name, size, params)
            times.append(seconds)
            rows.append({
                "workload": name, "size": size, "params": json.dumps(params), "repeat": repeat,
                "seconds": round(seconds, 4), "summary": json.dumps(summary),
                "host": platform.node(), "cpu": platform.processor() or platform.machine(),
                "python": platform.python_version(), "cpus": os.cpu_count(),
            })
        print(f"{name:<11} size={size:<12g} median {statistics.median(times):7.2f} s  "
              f"({', '.join(f'{t:.2f}' for t in times)})", flush=True)

    print(f"wrote {write_rows(args.out, rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
