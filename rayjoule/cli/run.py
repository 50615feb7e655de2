"""``python -m rayjoule.run``: one metered run of a workload or pipeline on one framework.

Examples::

    python -m rayjoule.run --workload pi --framework ray --tasks 8
    python -m rayjoule.run --workload ml --framework ray --tasks pca=2,train=8,test=4
"""

from __future__ import annotations

from rich.console import Console

from rayjoule.cli.common import (
    Parser,
    add_metering_args,
    add_stage_args,
    add_store_args,
    add_workload_args,
    metering_fields,
    parse_per_stage,
    progress_bar,
    resolve_config,
)
from rayjoule.cli.new_store import no_new_store_on_bad_input
from rayjoule.cli.output import check_output_paths, results_console, write_json
from rayjoule.cli.render import print_run
from rayjoule.core.config import MODES, RunConfig, framework_names


def build_parser() -> Parser:
    p = Parser(prog="python -m rayjoule.run", description=__doc__.splitlines()[0])
    add_workload_args(p)
    p.add_argument("--framework", choices=framework_names(), help="default: native")
    p.add_argument("--tasks", help="tasks per stage: N for every stage, or stage=N,stage=N")
    p.add_argument("--concurrency", type=int, help="processes/actors working at once")
    p.add_argument("--num-cpus", help="CPUs each task reserves (Ray): N or stage=N,stage=N")
    p.add_argument("--mode", choices=MODES, help="Ray tasks or a pool of actors")
    add_metering_args(p)
    add_stage_args(p)
    p.add_argument("--repeats", type=int, help="repeat the run; report medians")
    p.add_argument("--lithops-config", help="Lithops config file (framework lithops)")
    add_store_args(p)
    return p


def config_from_args(args) -> RunConfig:
    fields = {
        **metering_fields(args), "framework": args.framework,
        "tasks": parse_per_stage("tasks", args.tasks, int),
        "num_cpus": parse_per_stage("num_cpus", args.num_cpus, float),
        "concurrency": args.concurrency, "mode": args.mode, "repeats": args.repeats,
        "lithops_config": args.lithops_config,
    }
    return resolve_config(fields, args.config)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args).validated()
    check_output_paths(args.db, files={"--json": args.json})
    from rayjoule.runs.session import run

    console = Console(stderr=True)
    with progress_bar(console, transient=True) as progress:
        bar = progress.add_task(f"{config.workload} on {config.framework}", total=None)

        def on_start(n: int) -> None:
            progress.reset(bar, total=n)

        with no_new_store_on_bad_input(args.db):
            result = run(config, db=args.db, on_start=on_start,
                         on_task_done=lambda _t: progress.advance(bar))
    out = results_console(args.json)
    print_run(result, out)
    if args.json is not None:
        write_json(args.json, result.to_dict())
    if config.keep_alive and config.framework == "ray":
        from rayjoule.cluster.keepalive import announce

        announce(lambda line: out.print(line, markup=False, highlight=False,
                                       soft_wrap=True))
    return 0

