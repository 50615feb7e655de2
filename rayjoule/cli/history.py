"""``python -m rayjoule.history``: which host runs a job for the fewest joules, across stores.

Also how a new run compares with the same job's earlier ones (``--run``).

The stores are only read (``--db`` is repeatable: one store per machine, gathered).
Measured and modelled figures are ranked in separate tables: a modelled figure is an
estimate, never ranked against measurements.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from rayjoule.cli.common import Parser
from rayjoule.cli.output import (
    check_not_store,
    check_output_paths,
    print_table,
    results_console,
    write_json,
)
from rayjoule.core.config import DEFAULT_DB
from rayjoule.core.errors import ConfigError
from rayjoule.runs import reports as hist


def build_parser() -> Parser:
    p = Parser(prog="python -m rayjoule.history", description=__doc__.splitlines()[0])
    p.add_argument("--db", action="append", metavar="PATH",
                   help=f"a results store, repeatable (default {DEFAULT_DB}); only read")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--workload", help="rank hosts for this workload (default: every one)")
    what.add_argument("--run", metavar="RUN_ID",
                      help="compare this run with the same job's earlier runs")
    p.add_argument("--size", help="only this size (with --workload; default: each size apart)")
    p.add_argument("--by", choices=hist.GROUPINGS, default="host",
                   help="host: a host key (hostname + boot id, default); machine: hostname, "
                        "CPU model and vCPUs, so runs before and after a reboot count together")
    p.add_argument("--json", metavar="PATH", help="also write the result as JSON here")
    p.add_argument("--plot", metavar="DIR", help="write a figure of best joules per host here")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.size is not None and args.workload is None:
        parser.error("--size needs --workload")
    if args.plot is not None and args.run is not None:
        parser.error("--plot draws the host ranking; it does not go with --run")
    if args.run is not None and not args.run.strip():
        parser.error("--run needs a run id (history lists them)")
    dbs = distinct_stores(args.db or [DEFAULT_DB])
    check_output_paths(dbs, files={"--json": args.json}, folders={"--plot": args.plot})
    history = hist.load(dbs)
    console = results_console(args.json)
    names = store_names(history.stores)
    if args.run is not None:
        comparison = hist.compare_run(history, args.run)
        payload = {**_stores(history), "comparison": comparison.to_dict()}
        print_stores(history.stores, names, console)
        print_comparison(payload["comparison"], console)
    else:
        rankings = hist.rank_hosts(history, args.workload, args.size, args.by)
        payload = {**_stores(history), "by": args.by,
                   "jobs": [r.to_dict() for r in rankings]}
        print_stores(history.stores, names, console)
        for job in payload["jobs"]:
            print_ranking(job, args.by, console, names)
    if history.duplicates:
        console.print(f"{history.duplicates} run(s) found in more than one store were "
                      "counted once")
    figures = figure_suffixes(payload["jobs"]) if args.plot is not None else []
    for job, suffix in figures:  # before anything is written: no figure replaces a store
        from rayjoule.cli.plots import history_figure_path

        for db in dbs:
            check_not_store(history_figure_path(job, args.plot, suffix), "--plot", db)
    if args.json is not None:
        write_json(args.json, payload)
    for job, suffix in figures:
        from rayjoule.cli.plots import history_figure

        console.print(f"figure: {history_figure(job, args.plot, args.by, suffix)}")
    return 0


def figure_suffixes(jobs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """Each job with the suffix that tells apart jobs of one workload and size (other
    params): ``""``, then ``_2``, ``_3``…"""
    seen: dict[tuple[str, str], int] = {}
    out = []
    for job in jobs:
        key = (job["workload"], str(job["size"]))
        seen[key] = seen.get(key, 0) + 1
        out.append((job, f"_{seen[key]}" if seen[key] > 1 else ""))
    return out


def distinct_stores(paths: list[str]) -> list[str]:
    """The ``--db`` paths, each store once: one given twice (by the same or another path,
    a link) is bad input, not a second store (it was listed, and named, twice)."""
    seen: dict[tuple[int, int] | str, str] = {}
    for path in paths:
        if not path.strip():
            raise ConfigError("--db needs a file path")
        try:
            st = Path(path).expanduser().stat()
            key: tuple[int, int] | str = (st.st_dev, st.st_ino)
        except OSError:  # missing or unreadable: the store's own check says so
            key = str(Path(path).expanduser().absolute())
        if key in seen:
            raise ConfigError(f"--db {path} is the same store as --db {seen[key]}; "
                              "give each store once")
        seen[key] = path
    return paths


def _stores(history: hist.History) -> dict[str, Any]:
    return {"stores": history.stores, "duplicates": history.duplicates}


# -- rendering ---------------------------------------------------------------------------
def store_names(stores: list[dict[str, Any]]) -> dict[str, str]:
    """Short names for the store column: file names when they differ, else ``#1``, ``#2``…
    (full paths are printed once, above the tables, so long paths do not squeeze them)."""
    files = [Path(s["path"]).name for s in stores]
    unique = len(set(files)) == len(files)
    return {s["path"]: files[i] if unique else f"#{i + 1}" for i, s in enumerate(stores)}


def print_stores(stores: list[dict[str, Any]], names: dict[str, str], console: Console) -> None:
    listing = ", ".join(f"{names[s['path']]} = {s['path']} ({s['runs']} runs)" for s in stores)
    console.print(escape(f"stores (read only): {listing}"))


_LEFT = {"host", "machine", "meter", "framework", "store"}


def print_ranking(job: dict[str, Any], by: str, console: Console,
                  names: dict[str, str] | None = None) -> None:
    """One table per kind, each ranked from 1; the modelled one says it is an estimate."""
    skipped = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in job["skipped"].items()
                        if n)
    console.print(f"[bold]{escape(job['workload'])}[/] (size {job['size']}"
                  f"{_params(job['params'])}): {job['runs']} ok runs"
                  + (f" ({skipped} not ranked)" if skipped else ""))
    for kind in ("measured", "modelled", "unknown"):
        hosts = job.get(kind)
        if not hosts:
            continue
        title = {"measured": "measured — ranked by best total joules",
                 "modelled": "modelled estimates — ranked separately, not comparable with "
                             "measured figures",
                 "unknown": "meter kind unknown — ranked separately"}[kind]
        rows = []
        for h in hosts:
            s = h["settings"]
            rows.append((str(h["rank"]), escape(_where(h["hosts"], by)),
                         escape(_machines(h["hosts"], named=False)), escape(_meter(h)),
                         str(h["runs"]), f"{h['total_j']:.2f}", _times(h["vs_best"]),
                         f"{h['wall_s']:.3f}", escape(_framework(s)),
                         escape(_per_stage(s.get("tasks"))), str(s.get("concurrency")),
                         escape(_per_stage(s.get("num_cpus"))), h["run_id"],
                         escape((names or {}).get(h["store"], h["store"]))))
        print_table(console, escape(title),
                    ("#", by, "machine", "meter", "runs", "best J", "× best", "wall s",
                     "framework", "tasks", "conc", "cpus", "run", "store"), rows, left=_LEFT)
    if job["note"]:
        console.print(f"[yellow]note: {escape(job['note'])}[/]")


def print_comparison(c: dict[str, Any], console: Console) -> None:
    """The run, then one row per baseline: spread of earlier runs and the run's ratios."""
    r = c["run"]
    console.print(_run_line(r))
    console.print("  on " + escape(f"{_machines(r['hosts']) or '?'} [store {r['store']}]"))
    title = (f"against earlier ok runs of the same job (only comparable ones: {r['kind']}"
             + (", the same model basis" if r["kind"] != "measured" else "")
             + "; a caveat says otherwise)")
    rows = []
    caveats = []
    for key in ("same_host", "same_settings", "same_job"):
        b = c[key]
        if b["caveat"]:
            caveats.append(f"{b['label']}: {b['caveat']}")
        if not b["runs"]:
            rows.append((b["label"], "0", *["—"] * 8))
            continue
        kind = b["kind"] if b["comparable"] else f"{b['kind']} (!)"
        rows.append((b["label"], str(b["runs"]), str(b["hosts"]), escape(kind),
                     f"{b['total_j']['median']:.2f}", _spread(b["total_j"], ".2f"),
                     _times(b["ratio_total_j"]), f"{b['wall_s']['median']:.3f}",
                     _spread(b["wall_s"], ".3f"), _times(b["ratio_wall_s"])))
    print_table(console, escape(title),
                ("earlier runs", "count", "hosts", "kind", "median J", "J min–max [IQR]",
                 "ratio J", "median s", "s min–max [IQR]", "ratio s"), rows,
                left=("earlier runs",))
    for line in caveats:
        console.print(f"[yellow]caveat: {escape(line)}[/]")
    if not all(c[k]["comparable"] for k in ("same_host", "same_settings", "same_job")):
        console.print("[yellow](!) a row marked so compares figures that are not comparable: "
                      "shown for reference only[/]")


def _run_line(r: dict[str, Any]) -> str:
    source = escape(f"[meter {r['meter']}, {r['kind']}]")
    return (f"run {r['run_id']} — [bold]{escape(r['workload'])}[/] (size {r['size']}"
            f"{_params(r['params'])}), {escape(settings_text(r['settings']))}: "
            f"{r['total_j']:.2f} J, {r['wall_s']:.3f} s {source}")


def settings_text(s: dict[str, Any]) -> str:
    """``native, tasks 2, concurrency 2, cpus 1`` (Ray's mode only for Ray).

    >>> settings_text({"framework": "ray", "mode": "actors", "tasks": {"a": 2},
    ...                "concurrency": 4, "num_cpus": 1.0})
    'ray/actors, tasks a=2, concurrency 4, cpus 1'
    """
    return (f"{_framework(s)}, tasks {_per_stage(s.get('tasks'))}, "
            f"concurrency {s.get('concurrency')}, cpus {_per_stage(s.get('num_cpus'))}")


def _framework(s: dict[str, Any]) -> str:
    return s["framework"] + (f"/{s['mode']}" if s["framework"] == "ray" and s.get("mode")
                             else "")


def _per_stage(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={_per_stage(v)}" for k, v in value.items())
    return f"{value:g}" if isinstance(value, float) else str(value)


def _where(hosts: list[dict[str, Any]], by: str) -> str:
    if by == "machine":
        return "+".join(sorted({h["hostname"] or h["host"] for h in hosts})) or "?"
    return "+".join(sorted({h["host"] for h in hosts})) or "?"


def _machines(hosts: list[dict[str, Any]], named: bool = True) -> str:
    """``vm: AMD EPYC, 2 vCPUs`` per host (``named=False``: without the name when there is
    one host, as the host column names it); older runs without a description say so."""
    parts = []
    for h in hosts:
        desc = ("not described (older run)" if h["cpu_model"] is None and h["vcpus"] is None
                else f"{h['cpu_model'] or 'CPU ?'}, {h['vcpus'] or '?'} vCPUs")
        parts.append(f"{h['hostname'] or h['host']}: {desc}"
                     if named or len(hosts) > 1 else desc)
    return "; ".join(dict.fromkeys(parts))


def _meter(h: dict[str, Any]) -> str:
    """The meter, or for a modelled figure the model's basis it rests on (``tdp fallback``)."""
    models = sorted({m["model"] for m in h["hosts"] if m.get("model")})
    return "; ".join(models) or str(h["meter"])


def _params(params: dict[str, Any]) -> str:
    return f", params {','.join(f'{k}={v}' for k, v in params.items())}" if params else ""


def _times(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}×"


def _spread(s: dict[str, float], spec: str) -> str:
    return (f"{format(s['min'], spec)}–{format(s['max'], spec)} "
            f"[{format(s['q1'], spec)}, {format(s['q3'], spec)}]")
