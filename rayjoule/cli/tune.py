"""``python -m rayjoule.tune``: Optuna finds the settings that cost the fewest joules.

With no arguments: the ``pi`` workload on a local Ray instance, 20 trials, the
best meter ``detect()`` finds. Re-running the same command resumes the study.
"""

from __future__ import annotations

import os

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rayjoule.cli.common import (
    Parser,
    add_metering_args,
    add_store_args,
    add_workload_args,
    parse_params,
    progress_bar,
    write_json,
)
from rayjoule.core.config import MODES, RunConfig
from rayjoule.core.errors import ConfigError
from rayjoule.runs.store import Store
from rayjoule.tuning.space import SearchSpace, parse_range
from rayjoule.tuning.tuner import (
    SAMPLERS,
    Tuner,
    TuneReport,
    TuneSettings,
    default_storage,
    parse_objective,
)


def build_parser() -> Parser:
    p = Parser(prog="python -m rayjoule.tune", description=__doc__.splitlines()[0])
    add_workload_args(p, default_workload="pi")
    p.add_argument("--trials", type=int, default=20, help="trials to run now (default 20)")
    p.add_argument("--frameworks", default="ray", help="comma list: ray,native,lithops")
    p.add_argument("--tasks", default="1:64", help="N or LOW:HIGH, log scale (default 1:64)")
    p.add_argument("--concurrency", help="N or LOW:HIGH (default 1:2×cluster CPUs)")
    p.add_argument("--num-cpus", default="0.25:2", help="Ray CPUs per task (default 0.25:2)")
    p.add_argument("--mode", choices=MODES, help="fix the Ray mode (default: search both)")
    p.add_argument("--objective", default="energy",
                   help="energy (default), dynamic, or energy,time for a Pareto front")
    p.add_argument("--max-seconds", type=float, help="only settings whose wall time ≤ this")
    p.add_argument("--repeats", type=int, default=1, help="runs per trial; the median counts")
    p.add_argument("--no-prune", action="store_true",
                   help="never stop a clearly worse trial early (Wilcoxon pruner)")
    p.add_argument("--sampler", default="tpe", help=f"one of {', '.join(SAMPLERS)}")
    p.add_argument("--storage", help="Optuna storage URL (default: SQLite beside --db)")
    p.add_argument("--study-name", help="default: derived from workload, size and objective")
    add_metering_args(p)
    p.add_argument("--plot", metavar="DIR", help="write PNG figures here")
    add_store_args(p)
    return p


def _cluster_cpus(frameworks: tuple[str, ...], address: str | None,
                  keep_alive: bool = False) -> tuple[int, bool]:
    """CPUs to size the concurrency range; connects to Ray first when Ray is searched."""
    if "ray" not in frameworks:
        return os.cpu_count() or 1, False
    import ray

    from rayjoule.cluster.connect import connect

    started = connect(address, keep_alive=keep_alive)
    return int(ray.cluster_resources().get("CPU", 1)), started


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {args.trials}")
    frameworks = tuple(f.strip() for f in args.frameworks.split(",") if f.strip())
    objective = parse_objective(args.objective)
    base = RunConfig(
        workload=args.workload, size=args.size, seed=args.seed, params=parse_params(args.param),
        framework=frameworks[0] if frameworks else "ray", meter=args.meter,
        tdp_scope=args.tdp_scope, idle_seconds=args.idle_seconds, address=None,
        keep_alive=args.keep_alive,
    ).validated()
    tasks = parse_range("tasks", args.tasks)
    num_cpus = parse_range("num_cpus", args.num_cpus, float)
    modes = (args.mode,) if args.mode else MODES
    # everything is validated before Ray starts: bad input must cost nothing
    settings = TuneSettings(
        base=base, space=SearchSpace(frameworks, tasks, tasks, num_cpus, modes),
        objective=objective, max_seconds=args.max_seconds, repeats=args.repeats,
        sampler=args.sampler, seed=args.seed, prune=not args.no_prune,
        storage=args.storage or default_storage(args.db), study_name=args.study_name or "")
    if args.concurrency:
        parse_range("concurrency", args.concurrency)
    Store(args.db).close()
    cpus, started = _cluster_cpus(frameworks, args.address, args.keep_alive)
    concurrency = parse_range("concurrency", args.concurrency or f"1:{2 * cpus}")
    settings.space = SearchSpace(frameworks, tasks, concurrency, num_cpus, modes)
    console = Console()
    try:
        with Store(args.db) as store:
            tuner = Tuner(settings, store)
            interrupted = _optimize(tuner, args.trials, console)
            report = tuner.report()
    finally:
        if started and not args.keep_alive:
            from rayjoule.cluster.connect import disconnect

            disconnect()
    print_report(report, console)
    if args.json:
        write_json(args.json, report.to_dict())
    if args.plot:
        from rayjoule.cli.plots import tune_figures

        for path in tune_figures(report, args.plot):
            console.print(f"figure: {path}")
    if args.keep_alive and started:
        from rayjoule.cluster.keepalive import announce

        announce()
    return 130 if interrupted else 0


def _optimize(tuner: Tuner, n_trials: int, console: Console) -> bool:
    """Run the trials with a progress bar; True when Ctrl-C stopped them (completed ones kept)."""
    with progress_bar(console) as progress:
        bar = progress.add_task("trials", total=n_trials)

        def on_trial(ft) -> None:
            best = tuner.report().best
            text = f"best so far {best['total_j']:.1f} J" if best else "no feasible trial yet"
            progress.update(bar, advance=1, description=f"trial {ft.number} {ft.state.name}; "
                                                        f"{text}")

        try:
            tuner.optimize(n_trials, on_trial)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: the current trial was abandoned; "
                          "every completed trial is kept in the study[/]")
            return True
    return False


def print_report(report: TuneReport, console: Console) -> None:
    source = (f"meter {report.meter['name']}, {report.meter['kind']}" if report.meter
              else "no completed trial")
    table = Table(title=escape(f"study {report.study_name} ({len(report.trials)} trials) "
                               f"[{source}]"))
    for col in ("#", "state", "framework", "mode", "tasks", "conc.", "cpus", "joules", "wall s"):
        table.add_column(col, justify="right")
    for t in report.trials:
        p = t["params"]
        table.add_row(str(t["number"]), t["state"], str(p.get("framework", "")),
                      str(p.get("mode", "")), str(p.get("tasks", "")),
                      str(p.get("concurrency", "")), _fmt(p.get("num_cpus"), ".2f"),
                      _fmt(t["total_j"], ".1f"), _fmt(t["wall_s"], ".2f"))
    console.print(table)
    if report.best is None:
        limit = f" under --max-seconds {report.max_seconds:g}" if report.max_seconds else ""
        console.print(f"[bold red]no feasible trial{limit}[/]: no completed trial met the limit")
        return
    b = report.best
    console.print(f"[bold]best[/] (trial {b['number']}): "
                  + escape(f"{b['params']} → {b['total_j']:.2f} J in {b['wall_s']:.2f} s "
                           f"[{source}], run {b['run_id']}"))
    if report.pareto:
        console.print("Pareto front (joules, seconds): " + "; ".join(
            f"{t['total_j']:.1f} J / {t['wall_s']:.2f} s" for t in report.pareto))


def _fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)

