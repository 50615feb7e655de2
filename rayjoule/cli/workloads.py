"""``python -m rayjoule.workloads``: list the workloads, or run one serially as a reference.

Examples::

    python -m rayjoule.workloads                       # table of workloads and parameters
    python -m rayjoule.workloads --json workloads.json
    python -m rayjoule.workloads primes --size 10000000 --tasks 4
    python -m rayjoule.workloads airbnb --param data=reviews.csv

A serial run (no framework, no meter) prints the summary every framework must reproduce.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.table import Table

import workloads
from rayjoule.cli.common import Parser, write_json


def build_parser() -> Parser:
    p = Parser(prog="python -m rayjoule.workloads", description=__doc__.splitlines()[0])
    p.add_argument("name", nargs="?", help="run this workload serially (default: list them all)")
    p.add_argument("--size", help="problem size (the workload's default if omitted)")
    p.add_argument("--tasks", default="1", help="chunks to split the work into (default 1)")
    p.add_argument("--seed", default="0", help="random seed (default 0)")
    p.add_argument("--param", action="append", default=[], metavar="K=V",
                   help="workload parameter, repeatable (e.g. --param max_iter=500)")
    p.add_argument("--json", metavar="PATH", help="also write the listing or summary as JSON")
    return p


def describe(wl: workloads.Workload) -> dict[str, Any]:
    """A workload's metadata as JSON-safe data (the ``--json`` listing entry)."""
    return {
        "name": wl.name,
        "description": wl.description,
        "size_meaning": wl.size_meaning,
        "default_size": wl.default_size,
        "params": [
            {"name": p.name, "type": p.type.__name__, "default": p.default, "help": p.help,
             **({"choices": list(p.choices)} if p.choices else {})}
            for p in wl.params
        ],
    }


def listing_table(entries: list[dict[str, Any]]) -> Table:
    """The rich table printed by the listing."""
    table = Table(title="rayjoule workloads")
    table.add_column("name", style="bold")
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
        table.add_row(entry["name"], entry["size_meaning"], f"{entry['default_size']:,}",
                      params, entry["description"])
    return table


def run_serial(args: Any) -> dict[str, Any]:
    """Validate, run the workload in this process and return the JSON payload."""
    wl = workloads.get(args.name)
    params = workloads.parse_params(wl, args.param)
    size, values = wl.validate(args.size, args.tasks, params, args.seed)
    tasks, seed = int(args.tasks), int(args.seed)
    start = time.perf_counter()
    summary = workloads.execute(wl.name, size=size, tasks=tasks, seed=seed, **values)
    return {"workload": wl.name, "size": size, "tasks": tasks, "seed": seed, "params": values,
            "wall_s": time.perf_counter() - start, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    if args.name is None:
        payload: dict[str, Any] = {"workloads": [describe(workloads.get(n))
                                                 for n in workloads.names()]}
        console.print(listing_table(payload["workloads"]))
    else:
        payload = run_serial(args)
        table = Table(title=f"{payload['workload']} (serial, {payload['wall_s']:.2f} s)")
        table.add_column("key")
        table.add_column("value", justify="right")
        for key, value in payload["summary"].items():
            table.add_row(key, str(value))
        console.print(table)
    if args.json:
        write_json(args.json, payload)
    return 0

