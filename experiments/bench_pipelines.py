"""The built-in pipelines on Ray: rayjoule's speed vs bare Ray, and joules vs each stage's tasks.

Two studies, both on one local Ray instance sized to this machine:

**Speed** (``pipeline_speed.csv``). Each pipeline (ml, wordcount, video) at its default
per-stage tasks, run by rayjoule's Ray executor — metering on, the result stored, the whole
``Session.run_once`` timed — and by the same stages written directly in bare Ray: one remote
function calling each stage's own function, object references handed from stage to stage
with the same routes (``all``/``split`` pass references; a shuffle's upstream task returns
its buckets as ``num_returns`` separate objects, so each reader fetches only its bucket), the
same task counts, one CPU per task. Rounds interleave the two after a warm-up of each, in
alternating order (bare first, then rayjoule first, …), so drift and order hit both alike;
the speed ratio is bare seconds ÷ rayjoule seconds, median over rounds (the target is ≥ 0.9).
Both must return the serial reference's summary every time.

The rayjoule runs' stages are kept too (``pipeline_default_stages.csv``): each pipeline's
per-stage wall time and joules at its default settings.

**Stage sweep** (``pipeline_stage_sweep.csv``, ``pipeline_stage_sweep.png``). For each stage
that can be split, its tasks over 1, 2, 4, 8 (capped by the stage's ``max_tasks``) with the
other stages at their defaults; ``--repeats`` metered runs per setting after one warm-up
run, medians of the run's total joules and of that stage's own joules (``result.stages``:
its tasks' energy plus its share of the overhead). Reports each stage's least-energy setting,
whichever it is. On a machine without RAPL the meter is the tdp model: those joules are
modelled (utilisation × the CPU's power), and every figure says so. Its default scope here is
``process`` (``tdp[process]``): the dynamic part is the CPU time of Ray's processes and the
driver, not of the whole host, so other people's jobs on a shared machine are not charged to
the pipeline (another Ray instance on the same host still is: rayjoule finds Ray's processes
by name). Wall time, and with it static energy, still feels their load.

    python experiments/bench_pipelines.py [--rounds 8] [--repeats 3] [--skip-speed]
        [--skip-sweep] [--sizes ml=8000,wordcount=2000000,video=96] [--from-csv]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import workloads  # noqa: E402
from experiments._results import RESULTS as RESULTS_DIR  # noqa: E402
from experiments._results import read_rows, write_rows  # noqa: E402
from rayjoule.core.config import RunConfig  # noqa: E402
from rayjoule.runs.session import Session  # noqa: E402
from rayjoule.runs.store import Store  # noqa: E402

SPEED = RESULTS_DIR / "pipeline_speed.csv"
DEFAULT_STAGES = RESULTS_DIR / "pipeline_default_stages.csv"
SWEEP = RESULTS_DIR / "pipeline_stage_sweep.csv"
FIGURE = RESULTS_DIR / "pipeline_stage_sweep.png"

#: sizes that keep one run to a second or a few on a 2-vCPU machine
DEFAULT_SIZES = {"ml": 8000, "wordcount": 2_000_000, "video": 96}
SWEEP_TASKS = (1, 2, 4, 8)


# -- the same stages in bare Ray -------------------------------------------------------------

def bare_stage_task(run: Any, ctx: Any, layout: tuple[tuple[str, int], ...], buckets: int,
                    *flat: Any) -> Any:
    """One task in bare Ray: the stage's own function on its inputs (Ray resolved the refs).

    A stage read through a shuffle returns its ``buckets`` buckets as separate objects.
    """
    inputs, k = {}, 0
    for up, count in layout:
        inputs[up] = list(flat[k:k + count])
        k += count
    output = run(ctx, inputs)
    if buckets == 0:
        return output
    return output[0] if buckets == 1 else tuple(output)


def bare_ray(ray: Any, remote: Any, pipeline: Any, size: Any, seed: int,
             params: dict[str, Any], tasks: dict[str, int]) -> dict[str, Any]:
    """Run ``pipeline`` as a Ray user would write it by hand; return its summary.

    Every task of every stage is submitted up front with references to its inputs; only
    the sinks' outputs are fetched.
    """
    from workloads import Edge, TaskContext, route_inputs

    whole: dict[str, list[Any]] = {}  # stage -> one ref per task (its whole output)
    split: dict[str, list[list[Any]]] = {}  # stage -> per task, one ref per bucket
    for stage in pipeline.order():
        n = tasks[stage.name]
        routes = {e.route for _, e in pipeline.consumers(stage.name)}
        if "bucket" in routes and len(routes) > 1:
            raise ValueError(f"stage {stage.name!r} is read both whole and by buckets")
        fanout = pipeline.fanout(stage.name, tasks)
        buckets = fanout if "bucket" in routes else 0
        sources = (pipeline.source(stage.name, n, size, seed, params) if not stage.inputs
                   else [None] * n)
        task = remote.options(num_returns=max(1, buckets), name=f"{pipeline.name}.{stage.name}")
        refs = []
        for i in range(n):
            layout, flat = [], []
            for edge in stage.inputs:
                if edge.route == "bucket":
                    chosen = [parts[i] for parts in split[edge.stage]]
                else:
                    chosen = route_inputs(Edge(edge.stage, edge.route), whole[edge.stage], i, n)
                layout.append((edge.stage, len(chosen)))
                flat.extend(chosen)
            ctx = TaskContext(pipeline.name, stage.name, i, n, seed, size, params, fanout,
                              sources[i])
            refs.append(task.remote(stage.run, ctx, tuple(layout), buckets, *flat))
        if buckets:
            split[stage.name] = [r if isinstance(r, list) else [r] for r in refs]
        else:
            whole[stage.name] = refs
    sinks = {name: ray.get(whole[name]) for name in pipeline.sinks()}
    return pipeline.summary(sinks)


# -- the studies ----------------------------------------------------------------------------

def config(name: str, size: Any, tasks: dict[str, int] | None, cpus: int,
           scope: str) -> RunConfig:
    return RunConfig(workload=name, size=size, tasks=tasks or {}, framework="ray",
                     concurrency=cpus, meter="tdp", tdp_scope=scope, idle_seconds=0)


def speed(ray: Any, store: Store, sizes: dict[str, Any], rounds: int, cpus: int,
          scope: str) -> tuple[list[dict], list[dict]]:
    """Interleaved rounds of bare Ray and rayjoule on Ray, per pipeline; also each rayjoule
    run's stages (the pipelines' per-stage energy at their default settings)."""
    remote = ray.remote(bare_stage_task)
    rows, stages = [], []
    for name, size in sizes.items():
        pipe = workloads.get_pipeline(name)
        size, params, tasks = pipe.validate(size, None, {}, 0)
        expected = workloads.execute_pipeline(name, size=size)
        with Session(config(name, size, None, cpus, scope), store) as session:
            # warm both: Ray's workers import the stage's libraries once
            assert bare_ray(ray, remote, pipe, size, 0, params, tasks) == expected
            assert session.run_once().summary == expected
            for r in range(rounds):
                # ABBA: whichever goes second in a round may find the other's garbage still
                # being freed, so the order alternates and that cost falls on both alike
                bare = (ray, remote, pipe, size, params, tasks, expected)
                if r % 2 == 0:
                    bare_s = timed_bare(*bare)
                    ours_s, result = timed_rayjoule(session, expected)
                else:
                    ours_s, result = timed_rayjoule(session, expected)
                    bare_s = timed_bare(*bare)
                rows.append({"pipeline": name, "size": size, "tasks": _fmt_tasks(tasks),
                             "round": r, "first": "bare" if r % 2 == 0 else "rayjoule",
                             "bare_s": bare_s, "rayjoule_s": ours_s,
                             "speed_ratio": bare_s / ours_s,
                             "rayjoule_total_j": result.energy.total_j,
                             "meter": result.meter.name, "kind": result.meter.kind})
                stages += [{"pipeline": name, "size": size, "round": r, "stage": st.name,
                            "tasks": st.tasks, "wall_s": st.wall_s, "total_j": st.energy.total_j,
                            "static_j": st.energy.static_j,
                            "dynamic_j": st.energy.dynamic_j - st.energy.overhead_j,
                            "overhead_j": st.energy.overhead_j,
                            "run_total_j": result.energy.total_j,
                            "meter": result.meter.name, "kind": result.meter.kind}
                           for st in result.stages]
                print(f"  speed {name} round {r}: bare {bare_s:.3f} s, rayjoule {ours_s:.3f} s",
                      flush=True)
    return rows, stages


def timed_bare(ray: Any, remote: Any, pipe: Any, size: Any, params: dict[str, Any],
               tasks: dict[str, int], expected: dict[str, Any]) -> float:
    """Seconds for one bare-Ray run, which must give the reference summary."""
    t0 = time.perf_counter()
    summary = bare_ray(ray, remote, pipe, size, 0, params, tasks)
    seconds = time.perf_counter() - t0
    assert summary == expected, f"bare Ray {pipe.name}: {summary} != {expected}"
    return seconds


def timed_rayjoule(session: Session, expected: dict[str, Any]) -> tuple[float, Any]:
    """Seconds for one whole ``Session.run_once`` (metered, attributed, stored) and its result."""
    t0 = time.perf_counter()
    result = session.run_once()
    seconds = time.perf_counter() - t0
    assert result.summary == expected, f"rayjoule {result.workload}: {result.summary}"
    return seconds, result


def sweep_points(name: str) -> list[tuple[str, int, dict[str, int]]]:
    """(stage, its tasks, the run's task mapping) for every splittable stage's sweep."""
    pipe = workloads.get_pipeline(name)
    points = []
    for stage in pipe.order():
        values = [n for n in SWEEP_TASKS if stage.max_tasks is None or n <= stage.max_tasks]
        if len(values) < 2:
            continue  # a stage that must not be split has nothing to sweep
        for n in values:
            points.append((stage.name, n, {stage.name: n}))
    return points


def sweep(store: Store, sizes: dict[str, Any], repeats: int, cpus: int,
          scope: str) -> list[dict]:
    """Each splittable stage's tasks over SWEEP_TASKS, the others at their defaults.

    Every setting of a pipeline has its own open Session; after one warm-up run each, the
    repeats go round the settings (A B C … A B C …), so a burst of load on a shared machine
    hits every setting alike instead of all the repeats of one. A setting shared by several
    stages' sweeps (the all-defaults one) is run once.
    """
    rows = []
    for name, size in sizes.items():
        pipe = workloads.get_pipeline(name)
        expected = workloads.execute_pipeline(name, size=size)
        points = []
        settings: dict[tuple, dict[str, int]] = {}
        for stage, n, mapping in sweep_points(name):
            tasks = pipe.validate(size, mapping, {}, 0)[2]
            key = tuple(sorted(tasks.items()))
            settings[key] = tasks
            points.append((stage, n, key))
        results: dict[tuple, list[Any]] = {key: [] for key in settings}
        with ExitStack() as stack:
            sessions = {key: stack.enter_context(
                Session(config(name, size, tasks, cpus, scope), store))
                for key, tasks in settings.items()}
            for session in sessions.values():
                session.run_once()  # warm-up: worker start-up is not this setting's cost
            for rep in range(repeats):
                for key, session in sessions.items():
                    results[key].append(timed_rayjoule(session, expected)[1])
                print(f"  sweep {name}: repeat {rep + 1} of {repeats} done", flush=True)
        for stage, n, key in points:
            for rep, result in enumerate(results[key]):
                own = next(s for s in result.stages if s.name == stage)
                rows.append({"pipeline": name, "size": size, "stage": stage, "stage_tasks": n,
                             "tasks": _fmt_tasks(settings[key]), "repeat": rep,
                             "wall_s": result.wall_s, "total_j": result.energy.total_j,
                             "overhead_j": result.energy.overhead_j,
                             "stage_j": own.energy.total_j, "stage_wall_s": own.wall_s,
                             "meter": result.meter.name, "kind": result.meter.kind})
    return rows


# -- reporting ------------------------------------------------------------------------------

def report_speed(rows: list[dict]) -> None:
    print(f"\nspeed on Ray, rayjoule (metered, stored) vs bare Ray — median of "
          f"{len([r for r in rows if r['pipeline'] == rows[0]['pipeline']])} interleaved rounds")
    print(f"{'pipeline':<10} {'size':>9} {'tasks':<42} {'bare s':>7} {'rayjoule s':>10} "
          f"{'ratio':>6}")
    for name in dict.fromkeys(r["pipeline"] for r in rows):
        rs = [r for r in rows if r["pipeline"] == name]
        ratio = statistics.median(r["speed_ratio"] for r in rs)
        flag = "" if ratio >= 0.9 else "  < 0.9 target"
        print(f"{name:<10} {rs[0]['size']:>9} {rs[0]['tasks']:<42} "
              f"{statistics.median(r['bare_s'] for r in rs):>7.3f} "
              f"{statistics.median(r['rayjoule_s'] for r in rs):>10.3f} {ratio:>6.2f}{flag}")


def report_default_stages(rows: list[dict]) -> None:
    """Each pipeline's stages at their default tasks: medians over the speed rounds."""
    print(f"\nper-stage energy at the default settings on Ray — medians of the speed rounds "
          f"[{_source(rows)}]")
    print(f"{'pipeline':<10} {'stage':<10} {'tasks':>5} {'wall s':>7} {'static J':>9} "
          f"{'dynamic J':>9} {'overhead J':>10} {'stage J':>8} {'share':>6}")
    for name in dict.fromkeys(r["pipeline"] for r in rows):
        mine = [r for r in rows if r["pipeline"] == name]
        run_j = statistics.median({r["round"]: r["run_total_j"] for r in mine}.values())
        for stage in dict.fromkeys(r["stage"] for r in mine):
            rs = [r for r in mine if r["stage"] == stage]
            m = {k: statistics.median(r[k] for r in rs)
                 for k in ("wall_s", "static_j", "dynamic_j", "overhead_j", "total_j")}
            print(f"{name:<10} {stage:<10} {rs[0]['tasks']:>5} {m['wall_s']:>7.3f} "
                  f"{m['static_j']:>9.2f} {m['dynamic_j']:>9.2f} {m['overhead_j']:>10.2f} "
                  f"{m['total_j']:>8.2f} {m['total_j'] / run_j:>6.0%}")
        print(f"{name:<10} {'(run)':<10} {'':>5} {'':>7} {'':>9} {'':>9} {'':>10} "
              f"{run_j:>8.2f}")


def medians(rows: list[dict]) -> dict[tuple[str, str, int], dict[str, float]]:
    """(pipeline, stage, stage tasks) -> median, min and max over repeats of the run's joules
    (``total_j``…), the stage's own joules (``stage_j``…) and wall time."""
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["pipeline"], r["stage"], r["stage_tasks"]), []).append(r)
    out = {}
    for k, rs in groups.items():
        out[k] = {}
        for m in ("total_j", "stage_j", "wall_s"):
            values = [r[m] for r in rs]
            out[k].update({m: statistics.median(values), f"{m}_min": min(values),
                           f"{m}_max": max(values)})
    return out


def report_sweep(rows: list[dict]) -> None:
    source = _source(rows)
    med = medians(rows)
    print(f"\nstage sweep on Ray — medians of {max(r['repeat'] for r in rows) + 1} repeats "
          f"[min–max] [{source}]")
    for name in dict.fromkeys(r["pipeline"] for r in rows):
        for stage in dict.fromkeys(r["stage"] for r in rows if r["pipeline"] == name):
            points = sorted((n, m) for (p, s, n), m in med.items() if p == name and s == stage)
            cells = "  ".join(f"{n}: {m['total_j']:.1f} [{m['total_j_min']:.1f}–"
                              f"{m['total_j_max']:.1f}] / {m['stage_j']:.2f} J" for n, m in points)
            best_total = min(points, key=lambda p: p[1]["total_j"])
            best_stage = min(points, key=lambda p: p[1]["stage_j"])
            print(f"{name:<10} {stage:<9} tasks → run/stage J  {cells}")
            print(f"{'':<10} {'':<9} least energy: run {best_total[0]} tasks "
                  f"({best_total[1]['total_j']:.2f} J), stage's own {best_stage[0]} tasks "
                  f"({best_stage[1]['stage_j']:.2f} J)")


def plot(rows: list[dict], sizes: dict[str, Any], path: Path) -> Path:
    """One panel per pipeline; per swept stage a solid line (the run's joules) and a dashed
    one of the same colour (the stage's own joules), against that stage's tasks; medians,
    with the repeats' min–max as error bars (on a shared machine, load moves them)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    med = medians(rows)
    names = list(dict.fromkeys(r["pipeline"] for r in rows))
    repeats = max(r["repeat"] for r in rows) + 1
    source = _source(rows)
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 5.4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        stages = list(dict.fromkeys(r["stage"] for r in rows if r["pipeline"] == name))
        fixed = [s.name for s in workloads.get_pipeline(name).order() if s.name not in stages]
        for k, stage in enumerate(stages):
            points = sorted((n, m) for (p, s, n), m in med.items() if p == name and s == stage)
            xs = [n for n, _ in points]
            colour = f"C{k}"
            for key, style, what in (("total_j", "o-", "whole run"),
                                     ("stage_j", "s--", "stage's own")):
                mid = [m[key] for _, m in points]
                spread = [[y - m[f"{key}_min"] for y, (_, m) in zip(mid, points, strict=True)],
                          [m[f"{key}_max"] - y for y, (_, m) in zip(mid, points, strict=True)]]
                ax.errorbar(xs, mid, yerr=spread, fmt=style, color=colour, capsize=3,
                            label=f"{stage}: {what}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(SWEEP_TASKS), [str(n) for n in SWEEP_TASKS])  # integers only
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("tasks of the swept stage (others at their defaults)")
        ax.set_ylabel(f"energy, J ({source})")
        note = f"; fixed at 1 task: {', '.join(fixed)}" if fixed else ""
        ax.set_title(f"{name}, size {sizes[name]:,}{note}", fontsize=9)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    fig.suptitle(f"joules vs each stage's tasks on Ray: {', '.join(names)}; median (bars: "
                 f"min–max) of {repeats} repeats per setting [{source}]", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _source(rows: list[dict]) -> str:
    meters = sorted({f"meter {r['meter']}, {r['kind']}" for r in rows})
    return "; ".join(meters)


def _fmt_tasks(tasks: dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in tasks.items())


def _parse_sizes(text: str | None) -> dict[str, Any]:
    sizes = dict(DEFAULT_SIZES)
    for item in (text or "").split(","):
        if item.strip():
            name, _, value = item.partition("=")
            if name.strip() not in sizes:
                raise SystemExit(f"--sizes: unknown pipeline {name.strip()!r}")
            sizes[name.strip()] = float(value) if "." in value else int(float(value))
    return sizes


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8,
                    help="interleaved speed rounds, the order alternating (default 8)")
    ap.add_argument("--repeats", type=int, default=3, help="metered runs per sweep setting")
    ap.add_argument("--sizes", help="pipeline=size,… (default "
                    + ",".join(f"{k}={v}" for k, v in DEFAULT_SIZES.items()) + ")")
    ap.add_argument("--pipelines", default="ml,wordcount,video")
    ap.add_argument("--tdp-scope", choices=("process", "host"), default="process",
                    help="the tdp model's CPU time: Ray's and the driver's processes "
                         "(default: other jobs on a shared machine are not charged) or the "
                         "whole host's")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--from-csv", action="store_true",
                    help="run nothing: report and plot the CSVs of an earlier run again")
    args = ap.parse_args(argv)
    sizes = {k: v for k, v in _parse_sizes(args.sizes).items()
             if k in args.pipelines.split(",")}
    if args.from_csv:
        report_speed(read_rows(SPEED))
        report_default_stages(read_rows(DEFAULT_STAGES))
        rows = read_rows(SWEEP)
        report_sweep(rows)
        print(f"figure: {plot(rows, {r['pipeline']: r['size'] for r in rows}, FIGURE)}")
        return
    import ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             logging_level="WARNING")
    cpus = int(ray.cluster_resources()["CPU"])
    print(f"machine: {platform.node()}, {cpus} CPUs ({platform.processor() or platform.machine()})"
          f"; Ray {ray.__version__}")
    try:
        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.sqlite") as store:
            if not args.skip_speed:
                rows, stages = speed(ray, store, sizes, args.rounds, cpus, args.tdp_scope)
                write_rows(SPEED, rows)
                write_rows(DEFAULT_STAGES, stages)
                report_speed(rows)
                report_default_stages(stages)
            if not args.skip_sweep:
                rows = sweep(store, sizes, args.repeats, cpus, args.tdp_scope)
                write_rows(SWEEP, rows)
                report_sweep(rows)
                print(f"figure: {plot(rows, sizes, FIGURE)}")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
