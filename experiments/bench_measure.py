"""What ``rayjoule.measure()`` adds to a Ray program's wall time (issue 15).

The program: ``ray.get([f.remote(i) for i in range(1000)])`` with ``f`` spinning ~1 ms.
Rounds alternate plain / measured in ABBA order (after one warm-up of each), so drift in the machine
hits both alike. A measured round's wall time is the whole ``with`` statement: entering
(meter actors, host map, CPU probes, windows), the program, and leaving (CPU probes,
windows). By default measure() then waits for Ray's task events, attributes and stores in a
thread of its own while the program goes on; the round also times how long after the
``with`` began ``m.result`` was ready, and waits for it before the next round, so that work
never overlaps a plain round. ``--foreground`` measures ``background=False``, where leaving
the block does all of it. The per-phase times come from ``Measurement.phases_s``; ``body``
is the program itself inside the block.

    python experiments/bench_measure.py                       # 1000 tasks × 1 ms, 7 rounds
    python experiments/bench_measure.py --report-interval-ms 100 --out .../x.csv
    python experiments/bench_measure.py --settle-s 0 --out .../y.csv   # no wait: tasks missed
    python experiments/bench_measure.py --foreground --out .../z.csv   # wait before leaving

``--report-interval-ms`` sets ``RAY_task_events_report_interval_ms`` for the Ray instance
this script starts (how often workers flush task events: leaving a block waits for one).
Writes ``experiments/results/bench_measure.csv`` (one row per round).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments._results import RESULTS, write_rows  # noqa: E402

PHASES = ("connect", "meters", "idle", "start", "stop", "settle", "assemble", "store")


def spin(ms: float) -> float:
    t = time.perf_counter()
    while time.perf_counter() - t < ms / 1000:
        pass
    return ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--work-ms", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--report-interval-ms", type=int, default=None)
    ap.add_argument("--settle-s", type=float, default=5.0,
                    help="measure()'s bound on waiting for task events (0: read once, now)")
    ap.add_argument("--foreground", action="store_true",
                    help="measure(background=False): leaving the block attributes and stores")
    ap.add_argument("--out", default=str(RESULTS / "bench_measure.csv"))
    args = ap.parse_args()
    if args.report_interval_ms is not None:
        os.environ["RAY_task_events_report_interval_ms"] = str(args.report_interval_ms)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    import ray

    import rayjoule
    from rayjoule.cluster.connect import connect

    connect()
    f = ray.remote(spin)
    db = Path(tempfile.mkdtemp()) / "bench.sqlite"

    def plain() -> dict:
        t = time.perf_counter()
        ray.get([f.remote(args.work_ms) for _ in range(args.tasks)])
        return {"mode": "plain", "wall_s": time.perf_counter() - t}

    def measured() -> dict:
        t = time.perf_counter()
        with rayjoule.measure("bench", meter="auto", idle_seconds=0, db=db,
                              settle_s=args.settle_s, background=not args.foreground) as m:
            ray.get([f.remote(args.work_ms) for _ in range(args.tasks)])
        wall = time.perf_counter() - t
        r = m.result
        ready = time.perf_counter() - t
        return {"mode": "measured", "wall_s": wall, "result_ready_s": ready, "body_s": r.wall_s,
                **{f"{p}_s": m.phases_s.get(p, 0.0) for p in PHASES},
                "tasks_seen": r.summary["tasks_seen"], "events_dropped":
                r.summary["events_dropped"], "events_settled": r.summary["events_settled"],
                "total_j": r.energy.total_j,
                "overhead_j": r.energy.overhead_j, "meter": r.meter.name, "kind": r.meter.kind}

    plain(), measured()  # warm-up: workers, the meter actor
    rows = []
    for i in range(args.rounds):
        for run in (plain, measured) if i % 2 == 0 else (measured, plain):  # ABBA order
            rows.append({"round": i, "tasks": args.tasks, "work_ms": args.work_ms,
                         "report_interval_ms": args.report_interval_ms or 1000,
                         "background": not args.foreground,
                         "settle_limit_s": args.settle_s, **run()})
            print(f"round {i} {rows[-1]['mode']:8s} {rows[-1]['wall_s']:.3f} s", flush=True)
    fields = sorted({k for r in rows for k in r}, key=lambda k: list(rows[-1]).index(k)
                    if k in rows[-1] else 99)
    write_rows(Path(args.out), rows, fields)
    report(rows, args)


def report(rows: list[dict], args: argparse.Namespace) -> None:
    med = statistics.median
    plain = med(r["wall_s"] for r in rows if r["mode"] == "plain")
    meas = [r for r in rows if r["mode"] == "measured"]
    total = med(r["wall_s"] for r in meas)
    ready = med(r["result_ready_s"] for r in meas)
    body = med(r["body_s"] for r in meas)
    fixed = total - body
    print(f"\n{args.tasks} tasks × {args.work_ms:g} ms, {args.rounds} interleaved rounds, "
          f"meter {meas[0]['meter']} ({meas[0]['kind']}), task-event report interval "
          f"{args.report_interval_ms or 1000} ms, settle limit {args.settle_s:g} s, "
          f"attribution {'before leaving' if args.foreground else 'in the background'}")
    print(f"plain program           {plain:7.3f} s (median)")
    print(f"with measure()          {total:7.3f} s   ratio {total / plain:.3f} "
          f"(+{100 * (total / plain - 1):.1f} %)   <- the program's wall time")
    print(f"  until m.result ready  {ready:7.3f} s   ratio {ready / plain:.3f} "
          f"(+{100 * (ready / plain - 1):.1f} %)")
    print(f"  the program inside    {body:7.3f} s   ratio {body / plain:.3f} "
          f"(+{100 * (body / plain - 1):.1f} %)")
    print(f"  measure()'s own phases {fixed:6.3f} s "
          f"({100 * fixed / plain:.1f} % of the plain program):")
    for p in PHASES:
        print(f"    {p:10s} {med(r[f'{p}_s'] for r in meas):7.4f} s")
    print(f"tasks seen per block: {sorted({r['tasks_seen'] for r in meas})}; events dropped: "
          f"{any(r['events_dropped'] for r in meas)}; all settled: "
          f"{all(r['events_settled'] for r in meas)}")
    print(f"a program must run ≥ {fixed / 0.05:.1f} s for measure()'s fixed cost to stay "
          "≤ 5 % of its wall time")


if __name__ == "__main__":
    main()
