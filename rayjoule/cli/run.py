"""``python -m rayjoule.run``: one metered run of a workload on one framework.

Example::

    python -m rayjoule.run --workload pi --framework ray --tasks 8
"""

from __future__ import annotations

from rich.console import Console

from rayjoule.cli.common import (
    Parser,
    add_metering_args,
    add_store_args,
    add_workload_args,
    parse_params,
    progress_bar,
    write_json,
)
from rayjoule.cli.render import print_run
from rayjoule.core.config import FRAMEWORKS, MODES, RunConfig


def build_parser() -> Parser:
    p = Parser(prog="python -m rayjoule.run", description=__doc__.splitlines()[0])
    add_workload_args(p)
    p.add_argument("--framework", choices=FRAMEWORKS, help="default: native")
    p.add_argument("--tasks", type=int, help="number of chunks (parallelism of the map)")
    p.add_argument("--concurrency", type=int, help="processes/actors working at once")
    p.add_argument("--num-cpus", type=float, help="Ray CPUs per task (fractional allowed)")
    p.add_argument("--mode", choices=MODES, help="Ray tasks or a pool of actors")
    add_metering_args(p, defaults=False)
    p.add_argument("--repeats", type=int, help="repeat the run; report medians")
    p.add_argument("--lithops-config", help="Lithops config file (framework lithops)")
    p.add_argument("--config", help="TOML file of run settings (arguments override it)")
    add_store_args(p)
    return p


def config_from_args(args) -> RunConfig:
    fields = {
        "workload": args.workload, "size": args.size, "seed": args.seed,
        "params": parse_params(args.param) or None, "framework": args.framework,
        "tasks": args.tasks, "concurrency": args.concurrency, "num_cpus": args.num_cpus,
        "mode": args.mode, "meter": args.meter, "tdp_scope": args.tdp_scope,
        "idle_seconds": args.idle_seconds, "repeats": args.repeats, "address": args.address,
        "lithops_config": args.lithops_config, "keep_alive": args.keep_alive,
    }
    return RunConfig.resolve(fields, file=args.config)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args).validated()
    from rayjoule.runs.session import run

    console = Console(stderr=True)
    with progress_bar(console, transient=True) as progress:
        bar = progress.add_task(f"{config.workload} on {config.framework}", total=None)

        def on_start(n: int) -> None:
            progress.reset(bar, total=n)

        result = run(config, db=args.db, on_start=on_start,
                     on_task_done=lambda _t: progress.advance(bar))
    print_run(result, Console())
    if args.json:
        write_json(args.json, result.to_dict())
    if config.keep_alive and config.framework == "ray":
        from rayjoule.cluster.keepalive import announce

        announce()
    return 0

