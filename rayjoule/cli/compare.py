"""``python -m rayjoule.compare``: native vs Ray vs Lithops — the framework's own energy.

Default: ``pi`` on native, Ray and Lithops, 5 interleaved repeats each.
"""

from __future__ import annotations

import os

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
    parse_per_stage,
    resolve_config,
)
from rayjoule.cli.config_file import file_defaults
from rayjoule.cli.new_store import no_new_store_on_bad_input
from rayjoule.cli.output import check_not_store, check_output_paths, results_console, write_json
from rayjoule.core.config import MODES
from rayjoule.core.errors import ConfigError
from rayjoule.runs.store import Store

DEFAULT_FRAMEWORKS = "native,ray,lithops"


def build_parser() -> Parser:
    p = Parser(prog="python -m rayjoule.compare", description=__doc__.splitlines()[0])
    add_workload_args(p)
    p.add_argument("--frameworks", default=DEFAULT_FRAMEWORKS,
                   help="comma list (default %(default)s; ray:actors for Ray's actor pool); "
                        "native is the overhead baseline")
    p.add_argument("--tasks", help="tasks per stage: N or stage=N,… (default: CPU count)")
    p.add_argument("--concurrency", type=int, help="default: CPU count")
    p.add_argument("--num-cpus", help="Ray CPUs per task: N or stage=N,… (default 1)")
    p.add_argument("--mode", choices=MODES, help="Ray tasks (default) or actors")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats (default 5)")
    add_metering_args(p)
    add_stage_args(p)
    p.add_argument("--lithops-config", help="a Lithops config file instead of localhost")
    p.add_argument("--plot", metavar="DIR", help="write the comparison figure here")
    add_store_args(p)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    file_defaults(parser, args.config, "compare")
    args = parser.parse_args(argv)
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    if args.mode is not None and not any(f.partition(":")[0] == "ray" for f in frameworks):
        # run refuses --mode without ray; here it was silently ignored
        raise ConfigError(f"--mode {args.mode} applies to Ray only, and --frameworks "
                          f"{args.frameworks} has no ray")
    cpus = os.cpu_count() or 1
    tasks = parse_per_stage("tasks", args.tasks, int)
    # one config per framework (Ray's mode only applies to Ray), checked with the outputs
    # before the store is opened: bad input costs nothing and creates no file
    base = resolve_config({
        **metering_fields(args), "framework": "native",
        "tasks": cpus if tasks is None else tasks,
        "concurrency": cpus if args.concurrency is None else args.concurrency,
        "num_cpus": parse_per_stage("num_cpus", args.num_cpus, float), "mode": args.mode,
        "lithops_config": args.lithops_config,
    }, args.config)
    check_output_paths(args.db, files={"--json": args.json}, folders={"--plot": args.plot})
    from rayjoule.comparing.comparator import check_comparison, compare

    check_comparison(base, frameworks, args.repeats)  # before the store is created or opened
    if args.plot is not None:
        from rayjoule.cli.plots import compare_figure_path

        check_not_store(compare_figure_path(base.workload, args.plot), "--plot", args.db)
    console = results_console(args.json)
    with no_new_store_on_bad_input(args.db), Store(args.db) as store, \
            console.status("comparing…") as status:
        def on_run(r) -> None:
            status.update(f"{r.framework}: {r.energy.total_j:.1f} J in {r.wall_s:.2f} s")

        report = compare(base, frameworks, args.repeats, store, on_run=on_run)
    print_report(report, console)
    if args.json is not None:
        write_json(args.json, report)
    if args.plot is not None:
        from rayjoule.cli.plots import compare_figure

        path = compare_figure(report, args.plot)
        console.print(f"figure: {path}")
    if args.keep_alive and any(f.partition(":")[0] == "ray" for f in frameworks):
        from rayjoule.cluster.keepalive import announce

        announce(lambda line: console.print(line, markup=False, highlight=False,
                                       soft_wrap=True))
    return 0


def print_report(report: dict, console: Console) -> None:
    m = report["meter"]
    source = f"meter {m['name']}, {m['kind']}"
    title = (f"{report['workload']} (size {report['size']}), {report['task_count']} tasks, "
             f"concurrency {report['concurrency']}, {report['repeats']} interleaved repeats "
             f"(1 cold + {report['steady_repeats']} steady) — medians [95 % CI] [{source}]")
    table = Table(title=escape(title))
    for col in ("framework", "start-up J", "start-up s", "steady wall s", "steady total J",
                "tasks J", "attributed overhead J", "overhead vs native J", "overhead J/call"):
        table.add_column(col, justify="right")
    for fw, e in report["frameworks"].items():
        start = e.get("startup") or {}
        table.add_row(fw, _ci(start.get("total_j"), ".2f"), _ci(start.get("wall_s"), ".2f"),
                      _ci(e["wall_s"], ".2f"), _ci(e["total_j"], ".2f"),
                      _ci(e["tasks_j"], ".2f"), _ci(e["attributed_overhead_j"], ".2f"),
                      _ci(e.get("overhead_j"), ".2f"), _ci(e.get("overhead_j_per_task"), ".3f"))
    console.print(table)
    console.print("start-up = the cold first repeat (pools, workers, actors start in its window) "
                  "minus the steady median; overhead vs native is paired by steady repeat; "
                  "attributed overhead is the single-run view (energy no task's CPU explains)")
    console.print(f"workload summary identical on every framework "
                  f"({report['summaries_compared']} runs): {report['summary']}")


def _ci(stat, spec: str) -> str:
    if stat is None:
        return "—"
    lo, hi = stat["ci95"]
    return f"{format(stat['median'], spec)} [{format(lo, spec)}, {format(hi, spec)}]"

