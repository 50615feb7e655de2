"""rayjoule's executors vs the bare frameworks on no-op tasks — side by side, interleaved.

Issue 12's target: a metered, stored rayjoule run reaches ≥ 0.9× the task rate of the
bare framework doing the same calls, in every cell:

* Ray tasks: ``ray.get([noop.remote(i) for i in range(n)])`` vs ``rayjoule.run`` on Ray
  (metering on, store on), 1,000 and 10,000 tasks, concurrency = CPUs and = tasks;
* Ray actors: a bare ``ray.util.ActorPool.map`` vs rayjoule's actor pool;
* native: a warm ``ProcessPoolExecutor.map`` vs rayjoule's warm native pool.

Each round runs every pair back to back (bare and rayjoule, in ABBA order across rounds;
for Ray tasks every cell in every round) so drift hits both;
the ratio is rayjoule's rate ÷ bare rate, median over rounds, where rayjoule's time is the
whole ``Session.run_once`` call: meter window opened and closed, tasks, attribution, and
the run and its task rows written to the store (``window`` = the metered window alone).
The work is the ``sleep`` workload at size 0 (each task sleeps 0 s): pure framework and
bookkeeping cost.

``--memory`` runs rayjoule on Ray with 10,000 and 100,000 tasks, each in a fresh
interpreter, and prints the driver's peak resident memory during the run (sampled every
50 ms) above its resident memory just before, and how long the task rows took to store.

    python experiments/bench_speed.py [--rounds 5] [--sizes 1000 10000] [--memory]
    python experiments/bench_speed.py --breakdown --sizes 2000 --rounds 8

Writes ``experiments/results/bench_speed.csv`` (and ``bench_speed_memory.csv``).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments._results import RESULTS as RESULTS_DIR  # noqa: E402
from experiments._results import write_rows  # noqa: E402
from rayjoule.core.config import RunConfig  # noqa: E402
from rayjoule.runs.session import Session  # noqa: E402
from rayjoule.runs.store import Store  # noqa: E402

RESULTS = RESULTS_DIR / "bench_speed.csv"
MEMORY = RESULTS_DIR / "bench_speed_memory.csv"


def noop(x: int) -> int:
    return x


class NoopActor:
    def run(self, x: int) -> int:
        return x


def _call_run(actor, value):
    return actor.run.remote(value)


def config(framework: str, n: int, concurrency: int, mode: str = "tasks") -> RunConfig:
    return RunConfig(workload="sleep", size=0, framework=framework, tasks=n,
                     concurrency=concurrency, mode=mode, meter="tdp", idle_seconds=0)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--memory", action="store_true", help="also the 10k/100k memory runs")
    ap.add_argument("--breakdown", action="store_true",
                    help="only: where a Ray run's time goes (steps of run_once, driver CPU)")
    ap.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child)))
        return
    import ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             logging_level="WARNING")
    cpus = int(ray.cluster_resources()["CPU"])
    remote_noop = ray.remote(noop)
    ray.get([remote_noop.remote(i) for i in range(200)])  # warm the task workers
    if args.breakdown:
        breakdown(ray, remote_noop, args.sizes[0], args.rounds)
        ray.shutdown()
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.sqlite") as store:
        rows += ray_tasks(ray, remote_noop, store, args, cpus)
        rows += ray_actors(ray, store, args, cpus)
        rows += native(store, args, cpus)
    ray.shutdown()
    write_rows(RESULTS, rows)
    report(rows)
    if args.memory:
        mem = [json.loads(subprocess.check_output(
            [sys.executable, __file__, "--memory-child", str(n)], text=True).splitlines()[-1])
            for n in (10_000, 100_000)]
        write_rows(MEMORY, mem)
        for m in mem:
            print(f"memory: {m['tasks']:>7} tasks on Ray: peak driver RSS +{m['peak_rss_mib']:.0f}"
                  f" MiB over {m['base_rss_mib']:.0f} MiB ({m['bytes_per_task']:.0f} B/task); "
                  f"run {m['wall_s']:.1f} s, task rows stored in {m['store_s']:.2f} s")


def ray_tasks(ray, remote_noop, store, args, cpus) -> list[dict]:
    """Every cell's session stays open; each round visits every cell (bare and rayjoule in
    ABBA order), so a slow moment of the machine hits all cells and both sides alike."""
    from contextlib import ExitStack

    rows = []
    cells = [(n, conc) for n in args.sizes for conc in (cpus, n)]
    with ExitStack() as stack:
        sessions = {}
        for n, conc in cells:
            sessions[n, conc] = stack.enter_context(Session(config("ray", n, conc), store))
            sessions[n, conc].run_once()  # warm: Ray's workers, the meter actor
        for r in range(args.rounds):
            for n, conc in cells:
                def bare(n=n) -> float:
                    return timed(lambda: ray.get([remote_noop.remote(i) for i in range(n)]))

                if r % 2 == 0:
                    b, ours = bare(), timed_run(sessions[n, conc])
                else:
                    ours, b = timed_run(sessions[n, conc]), bare()
                rows.append(row("ray tasks", n, conc, r, b, *ours))
    return rows


def ray_actors(ray, store, args, cpus) -> list[dict]:
    from ray.util import ActorPool

    rows = []
    actor_cls = ray.remote(NoopActor)
    for n in args.sizes:
        # the bare pool reserves no CPUs, so rayjoule's pool (num_cpus=1 each) can be placed
        # beside it; reservations change scheduling, not the cost of a call
        actors = [actor_cls.options(num_cpus=0).remote() for _ in range(cpus)]
        pool = ActorPool(actors)
        list(pool.map(_call_run, range(50)))
        with Session(config("ray", n, cpus, mode="actors"), store) as session:
            session.run_once()  # warm pool
            for r in range(args.rounds):
                bare = timed(lambda n=n, pool=pool: list(pool.map(_call_run, range(n))))
                ours = timed_run(session)
                rows.append(row("ray actors", n, cpus, r, bare, *ours))
        for a in actors:
            ray.kill(a)
    return rows


def native(store, args, cpus) -> list[dict]:
    rows = []
    with cf.ProcessPoolExecutor(max_workers=cpus) as pool:
        list(pool.map(noop, range(50)))
        for n in args.sizes:
            with Session(config("native", n, cpus), store) as session:
                session.run_once()  # warm pool
                for r in range(args.rounds):
                    bare = timed(lambda n=n: list(pool.map(noop, range(n))))
                    ours = timed_run(session)
                    rows.append(row("native", n, cpus, r, bare, *ours))
    return rows


def timed_run(session: Session) -> tuple[float, float]:
    """The whole ``run_once`` call (meters, tasks, attribution, store) and its metered window."""
    t0 = time.perf_counter()
    result = session.run_once()
    return time.perf_counter() - t0, result.wall_s


def row(cell: str, n: int, conc: int, rnd: int, bare_s: float, ours_s: float,
        window_s: float) -> dict:
    return {"cell": cell, "tasks": n, "concurrency": conc, "round": rnd, "bare_s": bare_s,
            "rayjoule_s": ours_s, "rayjoule_window_s": window_s, "bare_tasks_per_s": n / bare_s,
            "rayjoule_tasks_per_s": n / ours_s, "rate_ratio": bare_s / ours_s,
            "window_ratio": bare_s / window_s}


def report(rows: list[dict]) -> None:
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        cells.setdefault((r["cell"], r["tasks"], r["concurrency"]), []).append(r)
    print(f"{'cell':<11} {'tasks':>6} {'conc':>6} {'bare/s':>9} {'rayjoule/s':>11} "
          f"{'ratio':>6} {'window':>7}  "
          f"(median of {len(next(iter(cells.values())))} interleaved rounds)")
    for (cell, n, conc), rs in cells.items():
        bare = statistics.median(r["bare_tasks_per_s"] for r in rs)
        ours = statistics.median(r["rayjoule_tasks_per_s"] for r in rs)
        ratio = statistics.median(r["rate_ratio"] for r in rs)
        window = statistics.median(r["window_ratio"] for r in rs)
        flag = "" if ratio >= 0.9 else "  < 0.9 target"
        print(f"{cell:<11} {n:>6} {conc:>6} {bare:>9.0f} {ours:>11.0f} {ratio:>6.2f} "
              f"{window:>7.2f}{flag}")


def breakdown(ray, remote_noop, n: int, rounds: int) -> None:
    """Where a rayjoule Ray run of ``n`` no-op tasks spends its time beyond bare Ray's.

    Wall time of each step of ``Session.run_once`` (each wrapped with a timer), and the
    driver's main-thread CPU time per task (``time.thread_time``: the Python work; Ray's own
    C++ threads are not in it) for bare Ray, the executor alone and the whole run.
    """
    import functools

    from rayjoule.runs import session as session_module

    steps: dict[str, list[float]] = {}

    def timed_step(obj, name: str, label: str) -> None:
        inner = getattr(obj, name)

        @functools.wraps(inner)
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return inner(*a, **k)
            finally:
                steps.setdefault(label, []).append(time.perf_counter() - t0)

        setattr(obj, name, wrapper)

    cpu: dict[str, list[float]] = {"bare Ray": [], "executor.run": [], "run_once": []}
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "b.sqlite") as store, \
            Session(config("ray", n, os.cpu_count() or 1), store) as session:
        session.run_once()
        timed_step(session_module, "assemble", "attribution (assemble)")
        for name in ("start", "stop", "record_tasks"):
            timed_step(session.metering, name, f"metering.{name}")
        timed_step(store, "finish", "store.finish")
        timed_step(session.executor, "run", "executor.run")
        work = {"bare Ray": lambda: ray.get([remote_noop.remote(i) for i in range(n)]),
                "executor.run": lambda: session.executor.run(session.job),
                "run_once": session.run_once}
        for _ in range(rounds):
            for label, fn in work.items():
                c0 = time.thread_time()
                fn()
                cpu[label].append(time.thread_time() - c0)
    med = statistics.median
    print(f"{n} no-op tasks on Ray, {rounds} rounds, medians")
    for label, values in steps.items():
        print(f"  {label:<24} {1000 * med(values):8.2f} ms")
    for label, values in cpu.items():
        print(f"  driver main thread, {label:<13} {1e6 * med(values) / n:7.1f} µs CPU per task")


def memory_child(n: int) -> dict:
    """One rayjoule Ray run of ``n`` no-op tasks in a fresh interpreter: peak RSS growth."""
    import ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             logging_level="WARNING")
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "m.sqlite") as store, \
            Session(config("ray", 10, os.cpu_count() or 1), store) as warm:
        warm.run_once()
        import gc

        import psutil

        gc.collect()
        me = psutil.Process()
        base = me.memory_info().rss / 2**20
        peak_seen = [base]
        stop = threading.Event()

        def watch() -> None:  # the driver's resident memory while the run is in flight
            while not stop.wait(0.05):
                peak_seen[0] = max(peak_seen[0], me.memory_info().rss / 2**20)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        with Session(config("ray", n, os.cpu_count() or 1), store) as session:
            result = session.run_once()
        stop.set()
        watcher.join()
        peak = peak_seen[0]
        t0 = time.perf_counter()
        store.finish(result)  # the same rows again: how long one run's task rows take
        store_s = time.perf_counter() - t0
    ray.shutdown()
    return {"tasks": n, "base_rss_mib": base, "peak_rss_mib": peak - base,
            "bytes_per_task": (peak - base) * 1024 * 1024 / n, "wall_s": result.wall_s,
            "store_s": store_s}


if __name__ == "__main__":
    main()
