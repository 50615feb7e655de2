"""``python -m rayjoule.tune``: Optuna finds the settings that cost the fewest joules.

With no arguments: the ``pi`` workload on a local Ray instance, 20 trials, the
best meter ``detect()`` finds. Re-running the same command resumes the study.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rayjoule.cli.common import (
    Parser,
    add_metering_args,
    add_stage_args,
    add_store_args,
    add_workload_args,
    metering_fields,
    progress_bar,
    resolve_config,
)
from rayjoule.cli.config_file import file_defaults
from rayjoule.cli.output import check_output_paths, check_writable, results_console, write_json
from rayjoule.cli.render import print_storage
from rayjoule.cli.stops import interrupted_line, interrupted_status
from rayjoule.core.config import MODES
from rayjoule.core.errors import ConfigError
from rayjoule.runs.session import resolve_pipeline
from rayjoule.runs.store import Store
from rayjoule.tuning.preflight import (
    cap_to_stages,
    check_meter,
    check_num_cpus,
    check_runs,
    cluster_cpus,
)
from rayjoule.tuning.space import SearchSpace, parse_range, parse_stage_ranges
from rayjoule.tuning.study_guard import check_storage, check_study, sqlite_path
from rayjoule.tuning.tuner import (
    SAMPLERS,
    Tuner,
    TuneReport,
    TuneSettings,
    default_storage,
    make_sampler,
    parse_objective,
    study_attrs,
)


def build_parser() -> Parser:
    p = Parser(prog="python -m rayjoule.tune", description=__doc__.splitlines()[0],
               epilog="Your own Ray program instead of a workload: --program MODULE:FUNCTION "
                      "--space knobs.toml (see --program x --help and docs/programs.md)")
    add_workload_args(p)
    p.add_argument("--trials", type=int, default=20, help="trials to run now (default 20)")
    p.add_argument("--frameworks", default="ray", help="comma list: ray,native,lithops")
    p.add_argument("--tasks", default="1:64",
                   help="N or LOW:HIGH (log scale), or per stage: pca=1:8,train=1:32 "
                        "(default 1:64)")
    p.add_argument("--concurrency", help="N or LOW:HIGH (default 1:2×cluster CPUs)")
    p.add_argument("--num-cpus", default="0.25:2",
                   help="Ray CPUs per task: N, LOW:HIGH or per stage (default 0.25:2)")
    p.add_argument("--mode", choices=MODES, help="fix the Ray mode (default: search both)")
    p.add_argument("--objective", default="energy",
                   help="energy (default), dynamic, or energy,time for a Pareto front")
    p.add_argument("--max-seconds", type=float, help="only settings whose wall time ≤ this")
    p.add_argument("--repeats", type=int, default=1, help="runs per trial; the median counts")
    p.add_argument("--no-prune", action="store_true",
                   help="never stop a clearly worse trial early (Wilcoxon pruner)")
    p.add_argument("--sampler", default="tpe",
                   help=f"one of {', '.join(SAMPLERS)}, or model (profile, predict, then TPE)")
    p.add_argument("--storage", help="Optuna storage URL (default: SQLite beside --db)")
    p.add_argument("--study-name", help="default: derived from workload, size and objective")
    add_metering_args(p)
    add_stage_args(p)
    p.add_argument("--plot", metavar="DIR", help="write PNG figures here")
    add_store_args(p)
    return p


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else list(argv)
    if any(a == "--program" or a.startswith("--program=") for a in raw):
        from rayjoule.cli.tune_program import main as tune_program

        return tune_program(raw)
    if any(a == "--space" or a.startswith("--space=") for a in raw):
        raise ConfigError("--space is for tuning a program: give --program MODULE:FUNCTION too")
    parser = build_parser()
    args = parser.parse_args(argv)
    file_defaults(parser, args.config, "tune")
    args = parser.parse_args(argv)
    if args.trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {args.trials}")
    frameworks = tuple(f.strip() for f in args.frameworks.split(",") if f.strip())
    twice = sorted({f for f in frameworks if frameworks.count(f) > 1})
    if twice:
        raise ConfigError(f"--frameworks gives {', '.join(twice)} twice")
    if args.mode and "ray" not in frameworks:
        raise ConfigError(f"--mode {args.mode} is a Ray mode; --frameworks "
                          f"{','.join(frameworks) or '(empty)'} has no ray")
    objective = parse_objective(args.objective)
    base = resolve_config({**metering_fields(args),
                           "framework": frameworks[0] if frameworks else "ray"},
                          args.config).validated()
    address, base = base.address, dataclasses.replace(base, address=None)
    check_meter(base.meter)
    pipeline = resolve_pipeline(base)
    stages = [s.name for s in pipeline.order()]
    tasks = cap_to_stages(parse_stage_ranges("tasks", args.tasks, stages), pipeline)
    num_cpus = parse_stage_ranges("num_cpus", args.num_cpus, stages, float)
    modes = (args.mode,) if args.mode else MODES
    model_seeded = args.sampler == "model"
    # everything is validated before Ray starts: bad input must cost nothing
    settings = TuneSettings(
        base=base, space=SearchSpace(frameworks, tasks, parse_range("tasks", "1"), num_cpus,
                                     modes),
        objective=objective, max_seconds=args.max_seconds, repeats=args.repeats,
        sampler="tpe" if model_seeded else args.sampler, seed=base.seed,
        prune=not args.no_prune, storage=args.storage or default_storage(args.db),
        study_name=args.study_name or "")
    make_sampler(settings.sampler, settings.seed, settings.space)  # --sampler gp's torch
    # before Ray: the concurrency given, or what the local CPUs allow (Ray's default range
    # needs the cluster and is checked again once connected)
    concurrency = parse_range("concurrency", args.concurrency) \
        if args.concurrency is not None else parse_range("concurrency",
                                                         f"1:{2 * (os.cpu_count() or 1)}")
    check_outputs(args.db, settings.storage, {"--json": args.json}, {"--plot": args.plot})
    check_storage(settings.storage, args.db)
    check_store(args.db)
    check_study(settings.storage, settings.study_name, study_attrs(settings),
                len(objective))
    check_runs(base, SearchSpace(frameworks, tasks, concurrency, num_cpus, modes),
               args.trials, args.repeats)
    if model_seeded:
        from rayjoule.tuning.model_seeding import check_profiling

        check_profiling(args.db, base)
    cpus, started = cluster_cpus(frameworks, address, base.keep_alive)
    try:
        check_num_cpus(num_cpus, cpus, frameworks)
        if args.concurrency is None:
            concurrency = parse_range("concurrency", f"1:{2 * cpus}")
        settings.space = SearchSpace(frameworks, tasks, concurrency, num_cpus, modes)
        check_runs(base, settings.space, args.trials, args.repeats)
        console = results_console(args.json)
        with Store(args.db) as store:
            tuner = Tuner(settings, store)
            print_storage(settings.storage, tuner.s.study_name, console)
            if model_seeded:
                _seed_with_model(tuner, store, pipeline, console)
            interrupted = _optimize(tuner, args.trials, console)
            report = tuner.report()
    finally:
        if started and not base.keep_alive:
            from rayjoule.cluster.connect import disconnect

            disconnect()
    print_report(report, console)
    if args.json:
        write_json(args.json, report.to_dict())
    if args.plot:
        from rayjoule.cli.plots import tune_figures

        for path in tune_figures(report, args.plot):
            console.print(f"figure: {path}")
    if base.keep_alive and started:
        from rayjoule.cluster.keepalive import announce

        announce(lambda line: console.print(line, markup=False, highlight=False,
                                       soft_wrap=True))
    if interrupted is not None:
        return interrupted_status(interrupted)
    return 0


def check_store(db: str | Path) -> None:
    """The results store: an existing file must be a usable store (opened, never changed
    when it is not one); a new one is created by the work, so only its folder is checked
    now — bad input creates no file."""
    from rayjoule.runs.store import Store

    if str(db) == ":memory:":
        return
    if Path(db).expanduser().exists():
        Store(db).close()
    else:
        check_writable(db, "--db")


def check_outputs(db: str | Path, storage: str, files: Mapping[str, str | None],
                  folders: Mapping[str, str | None] = {}, *,  # noqa: B006 - read only
                  inputs: Mapping[str, str | None] = {}) -> None:  # noqa: B006
    """Where the tune will write (``--json`` files, ``--plot`` folders): writable, and not
    the results store, the Optuna storage or one of the tune's own inputs (``--space``, the
    program's file): ``--json knobs.toml`` would replace the knobs with a report."""
    taken = dict(inputs)
    store_file = sqlite_path(storage)
    if store_file is not None:
        taken["the Optuna storage (--storage)"] = str(store_file)
    check_output_paths(str(db), files=files, folders=folders, others=taken)


def _seed_with_model(tuner: Tuner, store: Store, pipeline, console: Console) -> None:
    """The model-seeded sampler, showing the profiling design and its cost if it runs one."""
    from rayjoule.cli.profile import print_design, print_spent
    from rayjoule.tuning.model_seeding import seed_with_model

    seed_with_model(tuner, store, pipeline, console,
                    before_profiling=lambda d: print_design(d, tuner.s.base, console),
                    after_profiling=lambda o: print_spent(o, console, "profiling done:"))


def _optimize(tuner: Tuner, n_trials: int, console: Console) -> KeyboardInterrupt | None:
    """Run the trials with a progress bar (on stderr); the interruption if Ctrl-C or SIGTERM
    stopped them (completed trials are kept; one line says how to resume)."""
    with progress_bar(Console(stderr=True)) as progress:
        bar = progress.add_task("trials", total=n_trials)

        def on_trial(ft) -> None:
            best = tuner.report().best
            text = f"best so far {best['total_j']:.1f} J" if best else "no feasible trial yet"
            progress.update(bar, advance=1, description=f"trial {ft.number} {ft.state.name}; "
                                                        f"{text}")

        try:
            tuner.optimize(n_trials, on_trial)
        except KeyboardInterrupt as exc:
            done = sum(1 for t in tuner.study.trials if t.state.name == "COMPLETE")
            print(f"rayjoule: {interrupted_line(exc)}: {done} trial(s) completed in study "
                  f"{tuner.s.study_name!r} are kept; run the same command again to resume",
                  file=sys.stderr)
            return exc
    return None


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

