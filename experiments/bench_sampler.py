"""What do the meters' background samplers cost? Target: < 0.5 % of one core by default.

For each sampler this measures, over a window of wall time in which the main
thread only sleeps:

* the CPU time of the sampler thread itself (its POSIX per-thread CPU clock),
* the CPU time of the whole process (``time.process_time()``), which also
  includes Python's and psutil's side work,
* the cost of one sample (µs, the mean of many back-to-back samples),

and reports each as a percentage of one core (CPU seconds / wall seconds).
The RAPL sampler reads a *fake* powercap tree on tmpfs (/dev/shm), shaped like
a two-socket server (package, core, uncore, dram per socket, plus psys):
real sysfs reads cost a few µs more each, but the sampler's work is the same.
The tdp sampler (process scope) follows this process's tree plus a few idle
child processes, then a one-process tree on a host crowded with a few hundred
other processes (its cost grows with the host's new pids, see meters._proctree);
host scope has no sampler thread at all (see meters._tdp).

    python experiments/bench_sampler.py            # ~15 s per sampler
    python experiments/bench_sampler.py --seconds 5
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from experiments._results import RESULTS, write_rows  # noqa: E402
from meters import Meter, RaplMeter, TdpMeter  # noqa: E402
from tests.meters.fake_powercap import make_powercap_tree  # noqa: E402

PROC_NOTE = "reads /proc: one stat per tracked pid and per new pid on the host"
FIELDS = ["sampler", "scenario", "interval_s", "wall_s", "samples", "sampler_thread_cpu_s",
          "process_cpu_s", "thread_pct_of_core", "process_pct_of_core", "per_sample_us",
          "note"]


def thread_cpu_s(thread: threading.Thread) -> float:
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def sampler_thread(meter: Meter) -> threading.Thread:
    thread = meter._sampler._thread  # type: ignore[attr-defined]
    assert thread is not None and thread.is_alive()
    return thread


def per_sample_us(meter: Meter, n: int = 2000) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        meter._sample()  # type: ignore[attr-defined]
    return (time.perf_counter() - t0) / n * 1e6


def measure(name: str, scenario: str, meter: Meter, seconds: float, note: str) -> dict:
    thread = sampler_thread(meter)
    interval = meter.interval_s  # type: ignore[attr-defined]
    time.sleep(min(1.0, interval))  # let the thread settle
    th0, p0, w0 = thread_cpu_s(thread), time.process_time(), time.monotonic()
    time.sleep(seconds)
    th1, p1, w1 = thread_cpu_s(thread), time.process_time(), time.monotonic()
    wall = w1 - w0
    row = {
        "sampler": name,
        "scenario": scenario,
        "interval_s": round(interval, 4),
        "wall_s": round(wall, 3),
        "samples": int(wall / interval),
        "sampler_thread_cpu_s": round(th1 - th0, 6),
        "process_cpu_s": round(p1 - p0, 6),
        "thread_pct_of_core": round(100 * (th1 - th0) / wall, 4),
        "process_pct_of_core": round(100 * (p1 - p0) / wall, 4),
        "per_sample_us": round(per_sample_us(meter, 500 if name == "tdp" else 2000), 1),
        "note": note,
    }
    return row


def bench_rapl(seconds: float) -> dict:
    base = Path(tempfile.mkdtemp(prefix="rayjoule-bench-", dir="/dev/shm"
                                 if Path("/dev/shm").is_dir() else None))
    try:
        tree = make_powercap_tree(base, sockets=2, with_uncore=True, with_psys=True)
        with RaplMeter(root=tree.root) as m:
            return measure("rapl", f"fake 2-socket tree on tmpfs, {len(m.domains)} zones",
                           m, seconds, "fake powercap tree on tmpfs (not real sysfs)")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def bench_tdp(seconds: float, children: int) -> dict:
    kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
            for _ in range(children)]
    try:
        with TdpMeter(scope="process") as m:
            m.read()
            procs = len(m.tracked_pids)
            return measure("tdp", f"process scope: this process + {children} children "
                           f"({procs} pids tracked, {len(psutil.pids())} pids on host)",
                           m, seconds, PROC_NOTE)
    finally:
        for k in kids:
            k.kill()
            k.wait()


def bench_tdp_crowded(seconds: float, crowd: int) -> dict:
    """A tree of one process on a host with ``crowd`` more processes that are not in it."""
    helper = subprocess.Popen(["sh", "-c", f"for i in $(seq {crowd}); do sleep 3600 & done; wait"],
                              start_new_session=True)
    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    try:
        time.sleep(1.0)  # let the crowd start
        with TdpMeter(scope="process", pids=[target.pid], include_self=False) as m:
            m.read()
            return measure("tdp", f"process scope on a crowded host: 1 tracked pid, "
                           f"{len(psutil.pids())} pids on host", m, seconds,
                           PROC_NOTE)
    finally:
        target.kill()
        target.wait()
        os.killpg(helper.pid, signal.SIGKILL)
        helper.wait()


def baseline(seconds: float) -> dict:
    p0, w0 = time.process_time(), time.monotonic()
    time.sleep(seconds)
    p1, w1 = time.process_time(), time.monotonic()
    wall = w1 - w0
    return {"sampler": "none", "scenario": "idle process (noise floor)", "interval_s": "",
            "wall_s": round(wall, 3), "samples": 0, "sampler_thread_cpu_s": "",
            "process_cpu_s": round(p1 - p0, 6), "thread_pct_of_core": "",
            "process_pct_of_core": round(100 * (p1 - p0) / wall, 4), "per_sample_us": "",
            "note": ""}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0, help="window per sampler (15)")
    ap.add_argument("--children", type=int, default=4, help="idle children for tdp (4)")
    ap.add_argument("--crowd", type=int, default=300,
                    help="extra processes for the crowded-host tdp case (300; 0 skips it)")
    ap.add_argument("--out", type=Path, default=RESULTS / "bench_sampler.csv")
    args = ap.parse_args(argv)

    print(f"host: {platform.node()} {platform.processor() or platform.machine()}, "
          f"{psutil.cpu_count()} vCPU, Python {platform.python_version()}")
    rows = [baseline(min(args.seconds, 5.0)), bench_rapl(args.seconds),
            bench_tdp(args.seconds, args.children)]
    if args.crowd > 0:
        rows.append(bench_tdp_crowded(args.seconds, args.crowd))
    for r in rows:
        print(f"{r['sampler']:>5} | {r['scenario']}")
        if r["sampler"] != "none":
            print(f"      interval {r['interval_s']} s, {r['samples']} samples in {r['wall_s']} s;"
                  f" one sample {r['per_sample_us']} µs")
            print(f"      sampler thread {r['thread_pct_of_core']} % of one core;"
                  f" whole process {r['process_pct_of_core']} %  (target < 0.5 %)")
        else:
            print(f"      whole process {r['process_pct_of_core']} % of one core")
        if r["note"]:
            print(f"      note: {r['note']}")
    print(f"wrote {write_rows(args.out, rows, FIELDS)}")
    worst = max(float(r["process_pct_of_core"]) for r in rows if r["sampler"] != "none")
    return 0 if worst < 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
