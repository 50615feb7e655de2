"""``python -m rayjoule.workloads``: list the workloads and pipelines, or run one serially.

Examples::

    python -m rayjoule.workloads                       # workloads, pipelines, parameters
    python -m rayjoule.workloads pi --about            # where each flavour's parameters come from
    python -m rayjoule.workloads --json workloads.json
    python -m rayjoule.workloads primes --size 10000000 --tasks 4
    python -m rayjoule.workloads airbnb --param data=reviews.csv

A serial run (no framework, no meter) prints the summary every framework must reproduce.
"""

from __future__ import annotations

import time
from typing import Any

from rich.table import Table

import workloads
from rayjoule.cli.common import Parser
from rayjoule.cli.output import check_output_paths, results_console, write_json
from rayjoule.core.config import max_hours_given
from rayjoule.core.errors import ConfigError
from rayjoule.core.estimate import check_records_fit
from workloads._loading import entry_point_names


def build_parser() -> Parser:
    p = Parser(prog="python -m rayjoule.workloads", description=__doc__.splitlines()[0])
    p.add_argument("name", nargs="?",
                   help="run this workload or pipeline serially (default: list them all)")
    p.add_argument("--about", action="store_true",
                   help="with a name: its documentation (sources, flavours, what differs from "
                        "the original application) instead of running it")
    p.add_argument("--size", help="problem size (the workload's default if omitted)")
    p.add_argument("--tasks", default="1",
                   help="tasks: N for every stage, or stage=N,… (default 1)")
    p.add_argument("--seed", default="0", help="random seed (default 0)")
    p.add_argument("--param", action="append", default=[], metavar="K=V",
                   help="workload parameter, repeatable (e.g. --param max_iter=500)")
    p.add_argument("--max-hours", type=float,
                   help="refuse a serial run estimated to take longer (default 1; or "
                        f"{MAX_HOURS_ENV})")
    p.add_argument("--json", metavar="PATH", help="also write the listing or summary as JSON")
    return p


MAX_HOURS_ENV = "RAYJOULE_MAX_HOURS"


def max_hours(given: float | None) -> float:
    """``--max-hours``, else ``$RAYJOULE_MAX_HOURS``, else 1 (as for ``run``), finite > 0."""
    import math

    hours = max_hours_given(given)
    origin = "--max-hours" if given is not None else MAX_HOURS_ENV
    if not (math.isfinite(hours) and hours > 0):
        raise ConfigError(f"{origin} must be a finite number > 0, got {hours!r}")
    return hours


def check_serial_time(name: str, size: Any, params: dict[str, Any], limit_h: float) -> None:
    """A serial run is one process doing all the work: refuse one estimated to run longer
    than ``limit_h`` (``pi --size 1e15`` ran for days, with no warning)."""
    from rayjoule.core.estimate import estimated_cpu_s

    cpu_s = estimated_cpu_s(name, size, params)
    if cpu_s is not None and cpu_s / 3600 > limit_h:
        hours = cpu_s / 3600
        raise ConfigError(
            f"{name} at size {size:g} is estimated to run ≈ {hours:.3g} h serially (measured "
            f"on a 2-vCPU VM); pass --max-hours {hours * 1.5:.2g} (or {MAX_HOURS_ENV}) to "
            "run it anyway")


def describe(wl: Any) -> dict[str, Any]:
    """A workload's or pipeline's metadata as JSON-safe data (the ``--json`` listing entry)."""
    stages = [{"name": st.name, "default_tasks": st.default_tasks, "max_tasks": st.max_tasks,
               "inputs": [f"{e.stage} ({e.route})" for e in st.inputs]}
              for st in getattr(wl, "stages", ())]
    return {
        "name": wl.name,
        **({"stages": stages} if stages else {}),
        "description": wl.description,
        "size_meaning": wl.size_meaning,
        "default_size": wl.default_size,
        "params": [
            {"name": p.name, "type": p.type.__name__, "default": p.default, "help": p.help,
             **({"choices": list(p.choices)} if p.choices else {})}
            for p in wl.params
        ],
    }


def listing_table(entries: list[dict[str, Any]], title: str = "rayjoule workloads") -> Table:
    """The rich table printed by the listing (pipelines get a column of their stages)."""
    table = Table(title=title)
    table.add_column("name", style="bold")
    with_stages = any("stages" in e for e in entries)
    if with_stages:
        table.add_column("stages (default tasks) ← inputs")
    table.add_column("size means")
    table.add_column("default size", justify="right")
    table.add_column("params (defaults)")
    table.add_column("description")
    for entry in entries:
        params = "\n".join(
            f"{p['name']}: {p['type']} = {p['default']!r}"
            + (f" ({'|'.join(p['choices'])})" if "choices" in p else "")
            for p in entry["params"]
        ) or "-"
        stages = ["\n".join(f"{st['name']} ({st['default_tasks']})"
                             + (f" ← {', '.join(st['inputs'])}" if st["inputs"] else "")
                             for st in entry.get("stages", []))] if with_stages else []
        table.add_row(entry["name"], *stages, entry["size_meaning"],
                      f"{entry['default_size']:,}", params, entry["description"])
    return table


def about(name: str) -> str:
    """The documentation of a workload's or pipeline's module: its sources and flavours."""
    import inspect
    import sys

    pipeline = workloads.get_pipeline(name)
    step = pipeline.workload.map if pipeline.workload is not None else pipeline.stages[0].run
    module = sys.modules.get(getattr(step, "__module__", ""))
    return (inspect.getdoc(module) if module else None) or f"{name}: no documentation"


def run_serial(args: Any) -> dict[str, Any]:
    """Validate, run the workload or pipeline in this process and return the JSON payload."""
    from rayjoule.cli.common import parse_per_stage

    pipeline = workloads.get_pipeline(args.name)
    params = workloads.parse_params(pipeline, args.param)
    tasks = parse_per_stage("tasks", args.tasks, int)
    size, values, by_stage = pipeline.validate(args.size, tasks, params, args.seed)
    check_records_fit(sum(by_stage.values()))
    check_serial_time(pipeline.name, size, values, max_hours(args.max_hours))
    seed = int(args.seed)
    start = time.perf_counter()
    summary = workloads.run_serial(pipeline, size, by_stage, seed, values)
    return {"workload": pipeline.name, "size": size, "tasks": by_stage, "seed": seed,
            "params": values, "wall_s": time.perf_counter() - start, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_output_paths(None, files={"--json": args.json}, make_folders=True)
    console = results_console(args.json)
    if args.name is not None and args.about:
        text = about(args.name)
        console.print(text, markup=False, highlight=False)
        payload: dict[str, Any] = {"workload": args.name, "about": text}
    elif args.name is None:
        payload = {"workloads": [describe(workloads.get(n)) for n in workloads.names()],
                   "pipelines": [describe(workloads.get_pipeline(n))
                                 for n in workloads.pipeline_names()],
                   "plugins": {group: entry_point_names(group)
                               for group in ("rayjoule.workloads", "rayjoule.pipelines")}}
        console.print(listing_table(payload["workloads"]))
        console.print(listing_table(payload["pipelines"], "rayjoule pipelines"))
        for group, names in payload["plugins"].items():
            if names:
                console.print(f"entry points {group}: {', '.join(names)}")
        console.print("your own: --workload package.module:NAME; "
                      "`python -m rayjoule.workloads NAME --about` for sources and flavours")
    else:
        payload = run_serial(args)
        table = Table(title=f"{payload['workload']} (serial, {payload['wall_s']:.2f} s)")
        table.add_column("key")
        table.add_column("value", justify="right")
        for key, value in payload["summary"].items():
            table.add_row(key, str(value))
        console.print(table)
    if args.json is not None:
        write_json(args.json, payload)
    return 0

