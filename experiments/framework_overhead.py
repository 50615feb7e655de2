"""Issue 6's studies of framework overhead energy (each writes a CSV table and a PNG).

* ``seed``: the seed study — one workload on one processor's worth (``--tasks 1``,
  concurrency 1) natively, on Ray (tasks and actors) and on Lithops.
* ``granularity``: overhead joules per call vs work per task (≈ 1 ms … 1 s) for
  Ray tasks, Ray actors and Lithops against the native pool at equal tasks and
  concurrency — where each framework stops paying for itself (overhead < 5 %
  of the job's energy).
* ``parallelism``: joules and wall time vs tasks for each framework on two
  workloads.

Every point is a :func:`rayjoule.comparing.comparator.compare` run (interleaved repeats,
summaries checked identical, bootstrap 95 % intervals), and every row keeps apart, per
framework:

* **start-up**: the cold first repeat minus the steady median (energy and time), i.e. what
  starting pools, workers, actors or runtimes cost once;
* **steady state**: medians over the other repeats of wall time and energy, with the
  single-run view of each run — the tasks' attributed energy and the attributed overhead
  (energy no task's CPU explains) — next to
* **overhead vs native**: framework − native paired by steady repeat, in total and per
  call (task).

Ray's actor pool runs in a phase of its own with its own native baseline (``phase`` 2 in
the tables; ``baseline_total_j`` is the native steady median each overhead is paired
against): an actor pool's dedicated workers push Ray over its worker soft limit, so Ray reaps
idle task workers and the next Ray-tasks run would pay their restart — an artefact of
interleaving the two modes that a job using one of them never pays. Every figure is labelled
with the meter and whether it was measured or modelled.

    python experiments/framework_overhead.py seed [--flavour lithops --size 1e7 \
        --param points_per_call=10000000]
    python experiments/framework_overhead.py granularity [--task-ms 10 100 1000]
    python experiments/framework_overhead.py parallelism [--repeats 4]
    python experiments/framework_overhead.py seed --replot   # figure + tables from the CSV

Results: ``experiments/results/{seed_study,overhead_granularity,parallelism_sweep}.{csv,png}``
for the fast flavour, with ``_lithops`` before the suffix for ``--flavour lithops``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments._results import RESULTS, read_rows, write_rows  # noqa: E402
from rayjoule.cluster.connect import connect  # noqa: E402
from rayjoule.comparing.comparator import compare  # noqa: E402
from rayjoule.core.config import RunConfig  # noqa: E402
from rayjoule.runs.store import Store  # noqa: E402

FRAMEWORKS = ["native", "ray", "ray:actors", "lithops"]
#: statistics of compare()'s report kept per framework (median and 95 % CI each)
STATS = ("wall_s", "total_j", "static_j", "dynamic_j", "tasks_j", "attributed_overhead_j",
         "overhead_j", "overhead_j_per_task", "overhead_fraction")


def compare_phases(base: RunConfig, repeats: int, store: Store, on_run=None) -> dict:
    """native/ray/lithops interleaved, then native/ray:actors interleaved, merged.

    Each entry gets its ``phase``; ray:actors also its phase's ``baseline_total_j`` (the
    phase-2 native steady median), which its overheads are paired against.
    """
    report = compare(base, ["native", "ray", "lithops"], repeats, store, on_run=on_run)
    for entry in report["frameworks"].values():
        entry["phase"] = 1
        entry["baseline_total_j"] = report["frameworks"]["native"]["total_j"]
    actors = compare(base, ["native", "ray:actors"], repeats, store, on_run=on_run)
    entry = actors["frameworks"]["ray:actors"]
    entry["phase"] = 2
    entry["baseline_total_j"] = actors["frameworks"]["native"]["total_j"]
    report["frameworks"]["ray:actors"] = entry
    report["frameworks"]["native"].pop("baseline_total_j")
    if actors["meter"] != report["meter"]:
        report["meter"] = {"name": f"{report['meter']['name']}+{actors['meter']['name']}",
                           "kind": "measured" if {report["meter"]["kind"], actors["meter"]
                                                  ["kind"]} == {"measured"} else "modelled"}
    report["frameworks"] = {fw: report["frameworks"][fw] for fw in FRAMEWORKS}
    report["tdp_scope"] = base.tdp_scope
    return report


def _rows(report: dict, **extra) -> list[dict]:
    rows = []
    for fw, e in report["frameworks"].items():
        row = {**extra, "framework": fw, "phase": e["phase"], "tasks": report["task_count"],
               "concurrency": report["concurrency"], "size": report["size"],
               "repeats": report["repeats"], "steady_repeats": report["steady_repeats"],
               "meter": report["meter"]["name"], "kind": report["meter"]["kind"],
               "tdp_scope": report["tdp_scope"]}
        for key in STATS:
            _put(row, key, e.get(key))
        start = e.get("startup") or {}
        _put(row, "startup_j", start.get("total_j"))
        _put(row, "startup_s", start.get("wall_s"))
        _put(row, "baseline_total_j", e.get("baseline_total_j"))
        rows.append(row)
    return rows


def _put(row: dict, key: str, stat: dict | None) -> None:
    row[key] = stat["median"] if stat else None
    row[f"{key}_lo"] = stat["ci95"][0] if stat else None
    row[f"{key}_hi"] = stat["ci95"][1] if stat else None


def _write(rows: list[dict], name: str) -> Path:
    return write_rows(RESULTS / f"{name}.csv", rows)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _params(args, workload: str) -> dict:
    """``--flavour`` and the ``--param`` items that ``workload`` declares, typed."""
    import workloads

    wl = workloads.get(workload)
    declared = {p.name for p in wl.params}
    params = {"flavour": args.flavour} if "flavour" in declared else {}
    for item in args.param:
        key = item.partition("=")[0].strip()
        if key in declared:
            params.update(workloads.parse_params(wl, [item]))
    return params


def _check_params(args, names: list[str]) -> None:
    """Every ``--param`` must belong to one of the study's workloads."""
    import workloads

    declared = {p.name for n in names for p in workloads.get(n).params}
    unknown = [i for i in args.param if i.partition("=")[0].strip() not in declared]
    if unknown:
        raise SystemExit(f"--param {unknown[0]!r}: no workload of this study ({', '.join(names)})"
                         f" has that parameter")


def _label(row: dict) -> str:
    """``pi size 5e8 (flavour=fast)``: a row's workload, size, flavour and non-default params."""
    import workloads

    params = json.loads(row["params"])
    defaults = workloads.get(row["workload"]).defaults()
    shown = {k: v for k, v in params.items() if k == "flavour" or v != defaults.get(k)}
    return (f"{row['workload']} size {_size(row['size'])} "
            f"({', '.join(f'{k}={v}' for k, v in shown.items())})")


def _repeats(row: dict) -> str:
    return (f"{row['repeats']} repeats per phase (1 cold + {row['steady_repeats']} steady); "
            f"medians, 95 % CI")


def _size(v) -> str:
    """5e8 rather than 500000000 for large sizes."""
    if isinstance(v, int | float) and v >= 1e5:
        mantissa, exp = f"{v:e}".split("e")
        return f"{float(mantissa):g}e{int(exp)}"
    return str(v)


def _name(study: str, flavour: str) -> str:
    """Result file stem: ``study`` for the fast flavour, ``study_lithops`` otherwise."""
    return study if flavour == "fast" else f"{study}_{flavour}"


def seed(args, store: Store) -> None:
    params = _params(args, args.workload)
    base = RunConfig(workload=args.workload, size=args.size, params=params, tasks=1,
                     concurrency=1, meter=args.meter, tdp_scope=args.tdp_scope,
                     idle_seconds=args.idle_seconds)
    t0 = time.monotonic()
    report = compare_phases(base.validated(), args.repeats, store)
    rows = _rows(report, study="seed", workload=args.workload, flavour=args.flavour,
                 params=json.dumps(dict(base.validated().params), sort_keys=True))
    name = _name("seed_study", args.flavour)
    path = _write(rows, name)
    png = _seed_figure(rows, RESULTS / f"{name}.png")
    print(f"{_label(rows[0])}, 1 task, concurrency 1, {_repeats(rows[0])}; study took "
          f"{time.monotonic() - t0:.0f} s; workload summary identical on every framework: "
          f"{report['summary']}")
    _markdown(rows, SEED_COLUMNS)
    print(f"table {path}\nfigure {png}")


SEED_COLUMNS = (("framework", None), ("steady total J", "total_j"), ("tasks J (one run)",
                "tasks_j"), ("attributed overhead J (one run)", "attributed_overhead_j"),
                ("start-up J", "startup_j"), ("start-up s", "startup_s"),
                ("overhead vs native J", "overhead_j"),
                ("overhead J per call", "overhead_j_per_task"),
                ("steady wall s", "wall_s"))


def _seed_figure(rows: list[dict], out: Path) -> Path:
    plt = _pyplot()
    names = [r["framework"] for r in rows]
    source = _source(rows)
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 4.6))
    tasks = [r["tasks_j"] for r in rows]
    over = [r["attributed_overhead_j"] for r in rows]
    ax1.bar(names, tasks, color="C0", label="tasks' energy (one run, median)")
    ax1.bar(names, over, bottom=tasks, color="C1", label="attributed overhead (one run, median)")
    ax1.errorbar(names, [r["total_j"] for r in rows], yerr=_err(rows, "total_j"), fmt="none",
                 ecolor="k", capsize=6, label="steady total, 95 % CI")
    ax1.set_ylabel(f"steady energy per run, J ({source})")
    ax1.set_title("steady state: single-run view", fontsize=9)
    ax1.set_ylim(top=1.4 * max(r["total_j_hi"] for r in rows))
    ax1.legend(fontsize=8, loc="upper left")
    ax2.bar(names, [r["startup_j"] for r in rows], color="C2",
            yerr=_err(rows, "startup_j"), capsize=6)
    ax2.set_xticks(range(len(rows)), [f"{r['framework']}\n{r['startup_s']:+.2f} s"
                                      for r in rows])
    ax2.set_ylabel(f"start-up energy, J ({source})")
    ax2.set_title("start-up: cold first repeat − steady median (energy; time under the bars)",
                  fontsize=9)
    paired = [r for r in rows if r["overhead_j"] is not None]
    ax3.bar([r["framework"] for r in paired], [r["overhead_j_per_task"] for r in paired],
            color="C3", yerr=_err(paired, "overhead_j_per_task"), capsize=6)
    ax3.set_ylabel(f"overhead vs native per call, J ({source})")
    ax3.set_title("paired by steady repeat (actors vs their own native phase)", fontsize=9)
    for ax in (ax1, ax2, ax3):
        ax.axhline(0, color="k", lw=0.5)
    fig.suptitle(f"seed study: {_label(rows[0])}, 1 task, concurrency 1, {_repeats(rows[0])}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _points_per_ms(params: dict) -> float:
    """pi points one core draws per millisecond with ``params``, timed here (best of 3)."""
    import workloads

    wl = workloads.get("pi")
    n = 20_000_000 if params.get("flavour", "fast") == "fast" else 400_000
    size, full = wl.validate(n, 1, params)
    chunk = wl.partition(1, size, 0, full)[0]
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        wl.map(chunk)
        best = min(best, time.perf_counter() - t0)
    return n / (best * 1000)


def granularity(args, store: Store) -> None:
    cpus = os.cpu_count() or 1
    params = _params(args, "pi")
    rate = _points_per_ms(params)
    print(f"pi ({args.flavour}): {rate:.4g} points per ms on one core, timed here", flush=True)
    rows = []
    t0 = time.monotonic()
    for ms in args.task_ms:
        size = max(int(rate * ms * args.tasks), args.tasks)
        point = dict(params)
        if args.flavour == "lithops":  # one task = one original call
            point["points_per_call"] = max(size // args.tasks, 1)
        base = RunConfig(workload="pi", size=size, params=point, tasks=args.tasks,
                         concurrency=cpus, meter=args.meter, tdp_scope=args.tdp_scope,
                         idle_seconds=args.idle_seconds)
        native_task_s: list[float] = []

        def on_run(r, out=native_task_s) -> None:
            if r.framework == "native":
                out.extend(t.end - t.start for t in r.tasks)

        report = compare_phases(base, args.repeats, store, on_run=on_run)
        native_task_s.sort()
        rows += _rows(report, study="granularity", workload="pi", flavour=args.flavour,
                      params=json.dumps(dict(base.validated().params), sort_keys=True),
                      task_ms=ms, native_task_ms=1000 * native_task_s[len(native_task_s) // 2],
                      points_per_ms=rate)
        print(f"{ms} ms per task done ({time.monotonic() - t0:.0f} s)", flush=True)
    path = _write(rows, _name("overhead_granularity", args.flavour))
    png = _granularity_figure(rows, RESULTS / f"{_name('overhead_granularity', args.flavour)}.png")
    _markdown(rows, GRANULARITY_COLUMNS)
    print(f"table {path}\nfigure {png}")


GRANULARITY_COLUMNS = ((("task ms", "task_ms"), ("native task ms", "native_task_ms"))
                       + SEED_COLUMNS[:1] + SEED_COLUMNS[1:8]
                       + (("overhead %", "overhead_fraction"),))


def _granularity_figure(rows: list[dict], out: Path) -> Path:
    plt = _pyplot()
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.6))
    for fw in FRAMEWORKS:
        pts = [r for r in rows if r["framework"] == fw]
        x = [r["task_ms"] for r in pts]
        ax3.errorbar(x, [r["startup_j"] for r in pts], yerr=_err(pts, "startup_j"),
                     marker="o", capsize=3, label=fw, color=_colour(fw))
        if fw == "native":
            continue
        ax1.errorbar(x, [r["overhead_j_per_task"] for r in pts],
                     yerr=_err(pts, "overhead_j_per_task"), marker="o", capsize=3, label=fw,
                     color=_colour(fw))
        ax2.errorbar(x, [100 * r["overhead_fraction"] for r in pts],
                     yerr=[[100 * v for v in e] for e in _err(pts, "overhead_fraction")],
                     marker="o", capsize=3, label=fw, color=_colour(fw))
    source = _source(rows)
    task_ms = sorted({r["task_ms"] for r in rows})
    first = rows[0]
    for ax in (ax1, ax2, ax3):
        ax.set_xscale("log")
        ax.set_xticks(task_ms, [f"{m:g}" for m in task_ms])
        ax.minorticks_off()
        ax.set_xlabel(f"work per task, ms (pi {first['flavour']}, one core)")
        ax.axhline(0, color="k", lw=0.5)
    ax1.set_ylabel(f"steady overhead vs native per call, J ({source})")
    ax2.set_ylabel("steady overhead, % of the native job's energy")
    ax2.set_yscale("symlog", linthresh=1)
    ax2.axhline(5, color="C3", ls="--", lw=1, label="5 %")
    ax3.set_ylabel(f"start-up energy (cold − steady), J ({source})")
    for ax in (ax1, ax2, ax3):
        ax.legend(fontsize=8)
    fig.suptitle(f"framework overhead vs task granularity: pi ({first['flavour']}), "
                 f"{first['tasks']} tasks, concurrency {first['concurrency']}, "
                 f"{_repeats(first)}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def parallelism(args, store: Store) -> None:
    names = ["pi", "mandelbrot"]
    cpus = os.cpu_count() or 1
    fast = args.flavour == "fast"
    sizes = {"pi": args.pi_size or ("2e8" if fast else None),
             "mandelbrot": args.mandelbrot_size or ("2048" if fast else None)}
    rows = []
    t0 = time.monotonic()
    for workload in names:
        for tasks in args.tasks_list:
            base = RunConfig(workload=workload, size=sizes[workload],
                             params=_params(args, workload), tasks=tasks, concurrency=cpus,
                             meter=args.meter, tdp_scope=args.tdp_scope,
                             idle_seconds=args.idle_seconds).validated()
            report = compare_phases(base, args.repeats, store)
            rows += _rows(report, study="parallelism", workload=workload,
                          flavour=args.flavour, params=json.dumps(dict(base.params),
                                                                  sort_keys=True))
            print(f"{workload} tasks={tasks} done ({time.monotonic() - t0:.0f} s)", flush=True)
    path = _write(rows, _name("parallelism_sweep", args.flavour))
    png = _parallelism_figure(rows, RESULTS / f"{_name('parallelism_sweep', args.flavour)}.png")
    _markdown(rows, PARALLELISM_COLUMNS)
    _least_energy(rows)
    print(f"table {path}\nfigure {png}")


PARALLELISM_COLUMNS = (("workload", "workload"), ("tasks", "tasks")) + SEED_COLUMNS


def _parallelism_figure(rows: list[dict], out: Path) -> Path:
    plt = _pyplot()
    names = list(dict.fromkeys(r["workload"] for r in rows))
    labels = [_label(next(r for r in rows if r["workload"] == n)) for n in names]
    fig, axes = plt.subplots(3, len(names), figsize=(6 * len(names), 11), squeeze=False)
    source = _source(rows)
    tasks_list = sorted({r["tasks"] for r in rows})
    for col, workload in enumerate(names):
        for fw in FRAMEWORKS:
            pts = [r for r in rows if r["framework"] == fw and r["workload"] == workload]
            x = [r["tasks"] for r in pts]
            for row, key in enumerate(("total_j", "wall_s", "startup_j")):
                axes[row][col].errorbar(x, [r[key] for r in pts], yerr=_err(pts, key),
                                        marker="o", capsize=3, label=fw, color=_colour(fw))
        axes[0][col].set_title(labels[col], fontsize=9)
        axes[0][col].set_ylabel(f"steady energy per run, J ({source})")
        axes[1][col].set_ylabel("steady wall time, s")
        axes[2][col].set_ylabel(f"start-up energy (cold − steady), J ({source})")
        axes[0][col].set_yscale("log")
        axes[1][col].set_yscale("log")
        axes[2][col].axhline(0, color="k", lw=0.5)
        for row in range(3):
            ax = axes[row][col]
            ax.set_xscale("log", base=2)
            ax.set_xticks(tasks_list, [str(t) for t in tasks_list])
            ax.minorticks_off()
            ax.set_xlabel(f"tasks (concurrency {rows[0]['concurrency']})")
            ax.legend(fontsize=8)
    fig.suptitle(f"parallelism sweep: {' and '.join(labels)}; {_repeats(rows[0])}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _least_energy(rows: list[dict]) -> None:
    """Per workload and framework: the tasks with the lowest steady median energy, and the
    other task counts whose interval overlaps its interval (not told apart)."""
    print("\n| workload | framework | least-energy tasks | steady total J | tasks not told "
          "apart (95 % CIs overlap) |\n|---|---|---|---|---|")
    for workload in dict.fromkeys(r["workload"] for r in rows):
        for fw in FRAMEWORKS:
            pts = [r for r in rows if r["workload"] == workload and r["framework"] == fw]
            best = min(pts, key=lambda r: r["total_j"])
            ties = [str(r["tasks"]) for r in pts if r is not best
                    and r["total_j_lo"] <= best["total_j_hi"]]
            print(f"| {workload} | {fw} | {best['tasks']} | {_cell(best, 'total_j')} | "
                  f"{', '.join(ties) or 'none'} |")


def _colour(framework: str) -> str:
    """One colour per framework in every panel."""
    return f"C{FRAMEWORKS.index(framework)}"


def _source(rows: list[dict]) -> str:
    """``tdp, modelled`` (the meter's name carries a non-default scope: ``tdp[process]``)."""
    return f"{rows[0]['meter']}, {rows[0]['kind']}"


def _err(pts: list[dict], key: str) -> list[list[float]]:
    return [[max(r[key] - r[f"{key}_lo"], 0) for r in pts],
            [max(r[f"{key}_hi"] - r[key], 0) for r in pts]]


def _cell(row: dict, key: str) -> str:
    v = row[key]
    if v is None:
        return "—"
    if f"{key}_lo" not in row:
        return _fmt(v)
    lo, hi = row[f"{key}_lo"], row[f"{key}_hi"]
    if key == "overhead_fraction":
        return f"{100 * v:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
    return f"{_fmt(v)} [{_fmt(lo)}, {_fmt(hi)}]"


def _markdown(rows: list[dict], columns) -> None:
    """The rows as a markdown table: medians with [95 % CI], labelled with the meter."""
    print(f"\nmedians [95 % CI]; energy from meter {_source(rows)}\n")
    print("| " + " | ".join(title for title, _ in columns) + " |")
    print("|" + "---|" * len(columns))
    for r in rows:
        print("| " + " | ".join(_cell(r, key or "framework") for _, key in columns) + " |")
    print()


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def replot(args) -> None:
    """Redraw a study's figure and tables from its CSV (no runs)."""
    stem = {"seed": "seed_study", "granularity": "overhead_granularity",
            "parallelism": "parallelism_sweep"}[args.study]
    path = RESULTS / f"{_name(stem, args.flavour)}.csv"
    rows = read_rows(path)
    figure, columns = {"seed": (_seed_figure, SEED_COLUMNS),
                       "granularity": (_granularity_figure, GRANULARITY_COLUMNS),
                       "parallelism": (_parallelism_figure, PARALLELISM_COLUMNS)}[args.study]
    png = figure(rows, path.with_suffix(".png"))
    _markdown(rows, columns)
    if args.study == "parallelism":
        _least_energy(rows)
    print(f"table {path}\nfigure {png}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study", choices=("seed", "granularity", "parallelism"))
    p.add_argument("--repeats", type=int, default=5,
                   help="interleaved repeats per phase; the first is the cold start")
    p.add_argument("--meter", default="auto")
    p.add_argument("--idle-seconds", type=float, default=2.0)
    p.add_argument("--tdp-scope", choices=("host", "process"), default="host",
                   help="the tdp model's CPU time: the whole host's (default) or only the "
                        "run's processes (Ray's daemons and workers included)")
    p.add_argument("--flavour", choices=("fast", "lithops"), default="fast",
                   help="the workloads' flavour parameter (lithops: the original application's "
                        "work per call)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a workload parameter (repeatable; given to the study's workloads that "
                        "declare it)")
    p.add_argument("--workload", default="pi", help="seed study workload")
    p.add_argument("--size", default=None, help="seed study size (workload default)")
    p.add_argument("--tasks", type=int, default=8, help="granularity study: tasks")
    p.add_argument("--task-ms", type=float, nargs="+", default=[1, 10, 100, 1000])
    p.add_argument("--tasks-list", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    p.add_argument("--pi-size", default=None, help="parallelism: pi size (fast: 2e8; lithops: "
                   "the workload default)")
    p.add_argument("--mandelbrot-size", default=None, help="parallelism: mandelbrot size "
                   "(fast: 2048; lithops: the workload default)")
    p.add_argument("--db", default=str(RESULTS / "framework_overhead.sqlite"))
    p.add_argument("--replot", action="store_true",
                   help="redraw the study's figure and tables from its CSV, running nothing")
    args = p.parse_args(argv)
    if args.replot:
        replot(args)
        return 0
    if args.repeats < 2:
        p.error("--repeats must be >= 2: the first repeat is the cold start")
    _check_params(args, {"seed": [args.workload], "granularity": ["pi"],
                         "parallelism": ["pi", "mandelbrot"]}[args.study])  # before Ray starts
    connect(None, num_cpus=os.cpu_count() or 1, include_dashboard=False)
    with Store(args.db) as store:
        {"seed": seed, "granularity": granularity, "parallelism": parallelism}[args.study](
            args, store)
    return 0


if __name__ == "__main__":
    sys.exit(main())
