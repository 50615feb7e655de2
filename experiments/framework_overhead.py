"""Issue 6's studies of framework overhead energy (each writes a CSV table and a PNG).

* ``seed``: the seed study — one workload natively on one processor vs on
  Lithops with ``--tasks 1`` (and Ray, for reference).
* ``granularity``: overhead joules per call vs work per task (≈ 1 ms … 1 s) for
  Ray tasks, Ray actors and Lithops against the native pool at equal tasks and
  concurrency — where each framework stops paying for itself (overhead < 5 %
  of the job's energy).
* ``parallelism``: joules and wall time vs tasks for each framework on two
  workloads.

Every point is a :func:`rayjoule.comparing.comparator.compare` run (interleaved repeats,
summaries checked identical, bootstrap 95 % intervals); every figure is
labelled with the meter and whether it was measured or modelled.

    python experiments/framework_overhead.py seed
    python experiments/framework_overhead.py granularity
    python experiments/framework_overhead.py parallelism
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments._results import RESULTS, write_rows  # noqa: E402
from rayjoule.cluster.connect import connect  # noqa: E402
from rayjoule.comparing.comparator import compare  # noqa: E402
from rayjoule.core.config import RunConfig  # noqa: E402
from rayjoule.runs.store import Store  # noqa: E402

FRAMEWORKS = ["native", "ray", "ray:actors", "lithops"]
#: pi points per millisecond of one core on the development VM (bench_workloads: 5e8 in 2.7 s)
PI_POINTS_PER_MS = 185_000


def compare_phases(base: RunConfig, repeats: int, store: Store) -> dict:
    """native/ray/lithops interleaved, then native/ray:actors interleaved, merged.

    An actor pool's dedicated workers push Ray over its worker soft limit, so Ray
    reaps idle task workers and the next Ray-tasks run would pay their restart: an
    artefact of interleaving the two modes that a job using one of them never pays.
    Each phase has its own native baseline for its overheads.
    """
    report = compare(base, ["native", "ray", "lithops"], repeats, store)
    actors = compare(base, ["native", "ray:actors"], repeats, store)
    report["frameworks"]["ray:actors"] = actors["frameworks"]["ray:actors"]
    return report


def _rows(report: dict, **extra) -> list[dict]:
    rows = []
    for fw, e in report["frameworks"].items():
        row = {**extra, "framework": fw, "tasks": report["tasks"],
               "concurrency": report["concurrency"], "size": report["size"],
               "meter": report["meter"]["name"], "kind": report["meter"]["kind"]}
        for key in ("wall_s", "total_j", "dynamic_j", "overhead_j", "overhead_j_per_task",
                    "overhead_fraction"):
            stat = e.get(key)
            row[key] = stat["median"] if stat else None
            row[f"{key}_lo"] = stat["ci95"][0] if stat else None
            row[f"{key}_hi"] = stat["ci95"][1] if stat else None
        rows.append(row)
    return rows


def _write(rows: list[dict], name: str) -> Path:
    return write_rows(RESULTS / f"{name}.csv", rows)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def seed(args, store: Store) -> None:
    base = RunConfig(workload=args.workload, size=args.size, tasks=1, concurrency=1,
                     meter=args.meter, idle_seconds=args.idle_seconds)
    report = compare(base, ["native", "lithops", "ray"], args.repeats, store)
    rows = _rows(report, study="seed", workload=args.workload)
    path = _write(rows, "seed_study")
    from rayjoule.cli.plots import compare_figure

    png = compare_figure(report["frameworks"], report["meter"], RESULTS / "seed_study.png")
    _print(rows)
    print(f"table {path}\nfigure {png}")


def granularity(args, store: Store) -> None:
    cpus = os.cpu_count() or 1
    rows = []
    for ms in args.task_ms:
        size = int(PI_POINTS_PER_MS * ms * args.tasks)
        base = RunConfig(workload="pi", size=size, tasks=args.tasks, concurrency=cpus,
                         meter=args.meter, idle_seconds=args.idle_seconds)
        report = compare_phases(base, args.repeats, store)
        rows += _rows(report, study="granularity", workload="pi", task_ms=ms)
        print(f"{ms} ms per task done", flush=True)
    path = _write(rows, "overhead_granularity")
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    for fw in FRAMEWORKS[1:]:
        pts = [r for r in rows if r["framework"] == fw]
        x = [r["task_ms"] for r in pts]
        ax1.errorbar(x, [r["overhead_j_per_task"] for r in pts],
                     yerr=_err(pts, "overhead_j_per_task"), marker="o", capsize=3, label=fw)
        ax2.errorbar(x, [100 * r["overhead_fraction"] for r in pts],
                     yerr=[[100 * v for v in e] for e in _err(pts, "overhead_fraction")],
                     marker="o", capsize=3, label=fw)
    source = f"{rows[0]['meter']}, {rows[0]['kind']}"
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel("work per task, ms (pi, one core)")
        ax.axhline(0, color="k", lw=0.5)
        ax.legend()
    ax1.set_ylabel(f"overhead J per call ({source})")
    ax2.set_ylabel("overhead, % of the native job's energy")
    ax2.set_yscale("symlog", linthresh=1)
    ax2.axhline(5, color="C3", ls="--", lw=1, label="5 %")
    ax2.legend()
    fig.suptitle(f"framework overhead vs task granularity ({args.tasks} tasks, "
                 f"concurrency {cpus}, median and 95 % CI)")
    fig.tight_layout()
    fig.savefig(RESULTS / "overhead_granularity.png", dpi=110)
    _print(rows)
    print(f"table {path}\nfigure {RESULTS / 'overhead_granularity.png'}")


def parallelism(args, store: Store) -> None:
    cpus = os.cpu_count() or 1
    rows = []
    for workload, size in (("pi", args.pi_size), ("mandelbrot", args.mandelbrot_size)):
        for tasks in args.tasks_list:
            base = RunConfig(workload=workload, size=size, tasks=tasks, concurrency=cpus,
                             meter=args.meter, idle_seconds=args.idle_seconds)
            report = compare_phases(base, args.repeats, store)
            rows += _rows(report, study="parallelism", workload=workload)
            print(f"{workload} tasks={tasks} done", flush=True)
    path = _write(rows, "parallelism_sweep")
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    source = f"{rows[0]['meter']}, {rows[0]['kind']}"
    for col, workload in enumerate(("pi", "mandelbrot")):
        for fw in FRAMEWORKS:
            pts = [r for r in rows if r["framework"] == fw and r["workload"] == workload]
            x = [r["tasks"] for r in pts]
            axes[0][col].errorbar(x, [r["total_j"] for r in pts], yerr=_err(pts, "total_j"),
                                  marker="o", capsize=3, label=fw)
            axes[1][col].errorbar(x, [r["wall_s"] for r in pts], yerr=_err(pts, "wall_s"),
                                  marker="o", capsize=3, label=fw)
        axes[0][col].set_title(f"{workload}")
        axes[0][col].set_ylabel(f"energy per run, J ({source})")
        axes[1][col].set_ylabel("wall time, s")
        for ax in (axes[0][col], axes[1][col]):
            ax.set_xscale("log", base=2)
            ax.set_xlabel(f"tasks (concurrency {cpus})")
            ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "parallelism_sweep.png", dpi=110)
    _print(rows)
    print(f"table {path}\nfigure {RESULTS / 'parallelism_sweep.png'}")


def _err(pts: list[dict], key: str) -> list[list[float]]:
    return [[max(r[key] - r[f"{key}_lo"], 0) for r in pts],
            [max(r[f"{key}_hi"] - r[key], 0) for r in pts]]


def _print(rows: list[dict]) -> None:
    keys = [k for k in ("workload", "task_ms", "framework", "tasks", "wall_s", "total_j",
                        "overhead_j", "overhead_j_per_task", "overhead_fraction")
            if k in rows[0]]
    print("  ".join(f"{k:>14}" for k in keys) + f"   [{rows[0]['meter']}, {rows[0]['kind']}]")
    for r in rows:
        print("  ".join(f"{_fmt(r[k]):>14}" for k in keys))


def _fmt(v) -> str:
    return "—" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study", choices=("seed", "granularity", "parallelism"))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--meter", default="auto")
    p.add_argument("--idle-seconds", type=float, default=2.0)
    p.add_argument("--workload", default="pi", help="seed study workload")
    p.add_argument("--size", default=None, help="seed study size (workload default)")
    p.add_argument("--tasks", type=int, default=8, help="granularity study: tasks")
    p.add_argument("--task-ms", type=float, nargs="+", default=[1, 10, 100, 1000])
    p.add_argument("--tasks-list", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    p.add_argument("--pi-size", default="2e8")
    p.add_argument("--mandelbrot-size", default="2048")
    p.add_argument("--db", default=str(RESULTS / "framework_overhead.sqlite"))
    args = p.parse_args(argv)
    connect(None, num_cpus=os.cpu_count() or 1, include_dashboard=False)
    with Store(args.db) as store:
        {"seed": seed, "granularity": granularity, "parallelism": parallelism}[args.study](
            args, store)
    return 0


if __name__ == "__main__":
    sys.exit(main())
