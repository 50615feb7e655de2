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
model's dynamic watts per vCPU (labelled modelled). The on/off repeats alternate in ABBA
order and run after Ray has been shut down (Ray's own daemons are children of this process
and their background CPU time is not metering's).

    python experiments/bench_frameworks.py [--repeats 5] [--tasks 8]

Writes ``experiments/results/bench_frameworks.csv``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import meters  # noqa: E402
from experiments._results import RESULTS as RESULTS_DIR  # noqa: E402
from experiments._results import write_rows  # noqa: E402
from rayjoule.cluster.connect import connect, disconnect  # noqa: E402
from rayjoule.core.config import RunConfig  # noqa: E402
from rayjoule.runs.session import Session  # noqa: E402
from rayjoule.runs.store import Store  # noqa: E402

RESULTS = RESULTS_DIR / "bench_frameworks.csv"


def cpu_seconds() -> float:
    """CPU time of this process, its live children (the warm native pool's workers) and
    its reaped children."""
    import psutil

    me = psutil.Process()
    live = 0.0
    for child in me.children(recursive=True):
        try:
            t = child.cpu_times()
            live += t.user + t.system
        except psutil.Error:
            pass  # exited between listing and reading: its time is in the reaped fields
    return sum(os.times()[:4]) + live


def driver_seconds() -> float:
    """CPU time of this process alone (all its threads: the meter's samplers included).

    The pool's workers do the same work with metering on or off; the driver is where
    metering adds work (windows, samplers, attribution, the store), so the difference of
    this figure isolates metering's cost from the workers' much larger, noisier CPU time.
    """
    return time.process_time()  # CLOCK_PROCESS_CPUTIME_ID: ns, where os.times() has 10 ms ticks


def run_row(phase: str, name: str, rep: int, session: Session) -> dict:
    r = session.run_once()
    return {"phase": phase, "config": name, "repeat": rep, "metering": "on",
            "wall_s": r.wall_s, "total_j": r.energy.total_j, "dynamic_j": r.energy.dynamic_j,
            "meter": r.meter.name, "kind": r.meter.kind,
            "task_s_median": statistics.median(t.end - t.start for t in r.tasks),
            "cpu_s": None, "driver_cpu_s": None}


def overhead_rows(rep: int, native: Session) -> list[dict]:
    """The same native pool with a Session's metering and bare (no meter at all)."""
    rows = []
    for metering in ("off", "on") if rep % 2 == 0 else ("on", "off"):  # ABBA order
        c0, d0, t0 = cpu_seconds(), driver_seconds(), time.perf_counter()
        if metering == "on":
            native.run_once()
        else:
            native.executor.run(native.job)
        rows.append({"phase": "metering", "config": "native", "repeat": rep,
                     "metering": metering, "wall_s": time.perf_counter() - t0,
                     "cpu_s": cpu_seconds() - c0, "driver_cpu_s": driver_seconds() - d0,
                     "total_j": None, "dynamic_j": None,
                     "meter": None, "kind": None, "task_s_median": None})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--tasks", type=int, default=8)
    p.add_argument("--size", default=None, help="pi size (default: the workload's)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    cpus = os.cpu_count() or 1
    connect(None, num_cpus=cpus, include_dashboard=False)
    base = dict(workload="pi", size=args.size, tasks=args.tasks, concurrency=cpus,
                meter="auto", idle_seconds=2.0)
    store = Store(":memory:")
    native = Session(RunConfig(framework="native", **base), store)
    print(f"pi size {native.config.size:.3g}, {args.tasks} tasks, concurrency {cpus}, "
          f"{args.repeats} interleaved repeats per phase; meter {native.metering.label}")
    # Each Ray mode is interleaved with native in a phase of its own: an actor pool's
    # dedicated workers push Ray over its worker soft limit (num_cpus), so Ray reaps the idle
    # task workers and the next tasks run would pay their restart - an artefact of mixing
    # the two modes, not a cost a job using one of them pays.
    rows: list[dict] = []
    for phase, mode in (("tasks", "tasks"), ("actors", "actors")):
        ray_session = Session(RunConfig(framework="ray", mode=mode, **base), store)
        for rep in range(args.repeats):
            rows.append(run_row(phase, "native", rep, native))
            rows.append(run_row(phase, f"ray-{mode}", rep, ray_session))
        ray_session.close()
    # after Ray has gone: its raylet, GCS and agents are this process's children, and their
    # background CPU time would drown the few milliseconds being measured
    disconnect()
    for rep in range(args.repeats):
        rows += overhead_rows(rep, native)
    native.close()

    def med(key, phase, config, metering="on"):
        return statistics.median(r[key] for r in rows if r["phase"] == phase
                                 and r["config"] == config and r["metering"] == metering)

    label = f"{rows[0]['meter']}, {rows[0]['kind']}"
    print(f"\n{'phase':<8}{'config':<12}{'wall s':>9}{'total J':>10}{'wall/native':>13}"
          f"{'J/native':>10}{'task s':>9}   [{label}]")
    for phase in ("tasks", "actors"):
        for name in ("native", f"ray-{phase}"):
            print(f"{phase:<8}{name:<12}{med('wall_s', phase, name):9.3f}"
                  f"{med('total_j', phase, name):10.2f}"
                  f"{med('wall_s', phase, name) / med('wall_s', phase, 'native'):13.3f}"
                  f"{med('total_j', phase, name) / med('total_j', phase, 'native'):10.3f}"
                  f"{med('task_s_median', phase, name):9.3f}")
    off_cpu, on_cpu = (med("cpu_s", "metering", "native", m) for m in ("off", "on"))
    off_wall, on_wall = (med("wall_s", "metering", "native", m) for m in ("off", "on"))
    off_drv, on_drv = (med("driver_cpu_s", "metering", "native", m) for m in ("off", "on"))
    tdp = meters.TdpMeter()
    dyn_w_per_vcpu = tdp.model.dynamic_w_per_vcpu
    tdp.close()
    print(f"\nmetering overhead (native pool, meters on vs off, medians):"
          f"\n  CPU time  {on_cpu:.3f} s vs {off_cpu:.3f} s → {100 * (on_cpu / off_cpu - 1):+.2f} %"
          f"\n  wall time {on_wall:.3f} s vs {off_wall:.3f} s → "
          f"{100 * (on_wall / off_wall - 1):+.2f} %"
          f"\n  driver process CPU {on_drv:.4f} s vs {off_drv:.4f} s → metering's own work "
          f"{1000 * (on_drv - off_drv):+.1f} ms per run = "
          f"{100 * (on_drv - off_drv) / off_cpu:+.2f} % of the run's CPU time"
          f"\n  ≈ {(on_cpu - off_cpu) * dyn_w_per_vcpu:+.3f} J per run "
          f"(tdp model, modelled: {dyn_w_per_vcpu:.2f} W per busy vCPU)")
    print(f"\nrows: {write_rows(args.out, rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
