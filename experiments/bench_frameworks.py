"""Ray (tasks and actors) vs the native process pool, and metering on vs off — side by side.

Issue 4's targets: Ray within 10 % of native (wall time and energy) at equal
concurrency on ``pi`` at its default size with tasks of ≥ 100 ms, and a
metering overhead ≤ 1 %. Every configuration runs interleaved (A B C D A B C D …)
so drift and heat hit all alike; the figures printed are medians and ratios
measured in this one run.

Metering overhead is measured as the CPU time and wall time of the same work
with rayjoule's metering attached (a Session: meter windows, background
samplers) against the bare executor (no meter at all), plus the CPU time the
meter's own threads burn. It cannot be measured in joules with the meter under
test, so it is reported in CPU-seconds and converted to joules with the tdp
model's dynamic watts per vCPU (labelled modelled).

    python experiments/bench_frameworks.py [--repeats 5] [--tasks 8]

Writes ``experiments/results/bench_frameworks.csv``.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import meters  # noqa: E402
import workloads  # noqa: E402
from rayjoule.config import RunConfig  # noqa: E402
from rayjoule.raycluster import connect, disconnect  # noqa: E402
from rayjoule.runner import Session  # noqa: E402
from rayjoule.store import Store  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "bench_frameworks.csv"


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the native pool's workers).

    A pool's workers are joined when its map ends, so their CPU time is in
    ``os.times()``'s children fields by the time the second reading is taken.
    """
    return sum(os.times()[:4])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--tasks", type=int, default=8)
    p.add_argument("--size", default=None, help="pi size (default: the workload's)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    cpus = os.cpu_count() or 1
    connect(None, num_cpus=cpus, include_dashboard=False)
    base = dict(workload="pi", size=args.size, tasks=args.tasks, concurrency=cpus,
                meter="auto", idle_seconds=2.0)
    configs = {
        "native": RunConfig(framework="native", **base),
        "ray-tasks": RunConfig(framework="ray", mode="tasks", **base),
        "ray-actors": RunConfig(framework="ray", mode="actors", **base),
    }
    rows = []
    store = Store(":memory:")
    sessions = {name: Session(cfg, store) for name, cfg in configs.items()}
    wl = workloads.get("pi")
    print(f"pi size {sessions['native'].config.size:.3g}, {args.tasks} tasks, concurrency "
          f"{cpus}, {args.repeats} interleaved repeats; meter {sessions['native'].metering.label}")
    for rep in range(args.repeats):
        for name, session in sessions.items():
            r = session.run_once()
            per_task = statistics.median(t.end - t.start for t in r.tasks)
            rows.append({"config": name, "repeat": rep, "metering": "on", "wall_s": r.wall_s,
                         "total_j": r.energy.total_j, "dynamic_j": r.energy.dynamic_j,
                         "meter": r.meter.name, "kind": r.meter.kind,
                         "task_s_median": per_task, "cpu_s": None})
        # metering on vs off: the same native pool, with and without a Session's meters
        native = sessions["native"]
        for metering in ("off", "on"):
            c0, t0 = cpu_seconds(), time.perf_counter()
            if metering == "on":
                native.run_once()
            else:
                native.executor.map(wl, native.chunks)
            rows.append({"config": "native", "repeat": rep, "metering": f"{metering}-overhead",
                         "wall_s": time.perf_counter() - t0, "cpu_s": cpu_seconds() - c0,
                         "total_j": None, "dynamic_j": None, "meter": None, "kind": None,
                         "task_s_median": None})
    for s in sessions.values():
        s.close()
    disconnect()

    def med(config, key, metering="on"):
        return statistics.median(r[key] for r in rows
                                 if r["config"] == config and r["metering"] == metering)

    label = f"{rows[0]['meter']}, {rows[0]['kind']}"
    print(f"\n{'config':<12}{'wall s':>9}{'total J':>10}{'wall/native':>13}{'J/native':>10}"
          f"{'task s':>9}   [{label}]")
    for name in configs:
        print(f"{name:<12}{med(name, 'wall_s'):9.3f}{med(name, 'total_j'):10.2f}"
              f"{med(name, 'wall_s') / med('native', 'wall_s'):13.3f}"
              f"{med(name, 'total_j') / med('native', 'total_j'):10.3f}"
              f"{med(name, 'task_s_median'):9.3f}")
    off_cpu, on_cpu = med("native", "cpu_s", "off-overhead"), med("native", "cpu_s", "on-overhead")
    off_wall = med("native", "wall_s", "off-overhead")
    on_wall = med("native", "wall_s", "on-overhead")
    tdp = meters.TdpMeter()
    dyn_w_per_vcpu = tdp.model.dynamic_w_per_vcpu
    tdp.close()
    print(f"\nmetering overhead (native pool, meters on vs off, medians):"
          f"\n  CPU time  {on_cpu:.3f} s vs {off_cpu:.3f} s → {100 * (on_cpu / off_cpu - 1):+.2f} %"
          f"\n  wall time {on_wall:.3f} s vs {off_wall:.3f} s → "
          f"{100 * (on_wall / off_wall - 1):+.2f} %"
          f"\n  ≈ {(on_cpu - off_cpu) * dyn_w_per_vcpu:+.3f} J per run "
          f"(tdp model, modelled: {dyn_w_per_vcpu:.2f} W per busy vCPU)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"\nrows: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
