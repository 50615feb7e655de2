"""``python -m rayjoule.profile``: profiling runs per stage for the energy models, or imports.

Runs a small designed set of settings (:mod:`rayjoule.modelling.profiling_design`: four or
five task counts per stage, and on Ray two CPU-per-task points, at the smallest input size,
repeated; the smallest and largest task count once at each larger size, to pin how time and
energy grow with the size), stored like any run and tagged as profiling, so ``python -m
rayjoule.predict`` can fit the models.
It prints what it will run before it starts and what energy it spent at the end::

    python -m rayjoule.profile --workload pi                       # sizes ⅛ and ½ of 5e8
    python -m rayjoule.profile --workload wordcount --size 4e6 --framework ray
    python -m rayjoule.profile --workload pi --sizes 1e7,4e7 --repeats 3
    python -m rayjoule.profile --import-flexecutor map.json --workload wc --stage map
    python -m rayjoule.profile --export-flexecutor map.json --workload wordcount --stage map
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

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
    resolve_config,
)
from rayjoule.cli.output import check_not_store, check_writable, results_console, write_json
from rayjoule.cli.stops import interrupted_line
from rayjoule.core.config import framework_names
from rayjoule.core.errors import ConfigError
from rayjoule.modelling.profiling_design import (
    DEFAULT_ANCHOR_REPEATS,
    DEFAULT_REPEATS,
    ProfileDesign,
    design,
)
from rayjoule.modelling.profiling_runs import (
    ProfilingOutcome,
    check_design_feasible,
    run_design,
    store_timings,
)
from rayjoule.runs.store import Store

COMMAND = "python -m rayjoule.profile"


def build_parser() -> Parser:
    p = Parser(prog=COMMAND, description=__doc__.splitlines()[0])
    add_workload_args(p)
    p.add_argument("--sizes", help="comma list of input sizes to profile at (default ⅛ and ½ "
                                   "of --size, or of the workload's default size): the grid "
                                   "at the smallest, the anchors at each larger one")
    p.add_argument("--framework", choices=framework_names(), help="default: native")
    p.add_argument("--concurrency", type=int, help="processes/actors at once (default: CPUs)")
    p.add_argument("--task-counts", metavar="N,N,…",
                   help="task counts to profile (default: powers of two up to 4×concurrency)")
    p.add_argument("--repeats", type=int,
                   help=f"runs per setting of the grid at the smallest size (default "
                        f"{DEFAULT_REPEATS})")
    p.add_argument("--anchor-repeats", type=int,
                   help="runs per anchor (smallest and largest task count) at each larger "
                        f"size (default {DEFAULT_ANCHOR_REPEATS})")
    add_metering_args(p)
    add_stage_args(p)
    p.add_argument("--import-flexecutor", metavar="FILE",
                   help="instead of running: store flexecutor's profiling JSON of one stage "
                        "under --workload/--stage (with energy where it carries energy_j, "
                        "under the meter of its sidecar FILE.meta.json, or flexecutorGreen's "
                        "energy under the meter its energy_source names; --size defaults to "
                        "the sidecar's, else 1)")
    p.add_argument("--export-flexecutor", metavar="OUT.json",
                   help="instead of running: write the store's profiles of one stage (at one "
                        "size) in flexecutor's profiling layout, with each task's joules as "
                        "the step energy_j; meter and meaning go to OUT.json.meta.json")
    p.add_argument("--stage", help="with --import-flexecutor: the stage the file profiles; "
                                   "with --export-flexecutor: the stage to write")
    add_store_args(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.json:
        check_writable(args.json, "--json")
        check_not_store(args.json, "--json", args.db)
    for flag in ("import_flexecutor", "export_flexecutor"):
        if getattr(args, flag) is not None and not getattr(args, flag).strip():
            raise ConfigError(f"--{flag.replace('_', '-')} needs a file path, got ''")
    if args.import_flexecutor is not None and args.export_flexecutor is not None:
        raise ConfigError("--import-flexecutor and --export-flexecutor go one at a time")
    if args.import_flexecutor is not None:
        return import_flexecutor(args)
    if args.export_flexecutor is not None:
        return export_flexecutor(args)
    if args.stage is not None:
        raise ConfigError("--stage only goes with --import-flexecutor or --export-flexecutor")
    args.repeats = DEFAULT_REPEATS if args.repeats is None else args.repeats
    args.anchor_repeats = (DEFAULT_ANCHOR_REPEATS if args.anchor_repeats is None
                           else args.anchor_repeats)
    base = resolve_config({**metering_fields(args), "framework": args.framework,
                           "concurrency": args.concurrency}, args.config).validated()
    sizes = None if args.sizes is None else [s.strip() for s in args.sizes.split(",")]
    counts = None if args.task_counts is None else [
        _int("--task-counts", t) for t in args.task_counts.split(",")]
    d = design(base, sizes=sizes, repeats=args.repeats, tasks=counts,
               anchor_repeats=args.anchor_repeats)
    check_design_feasible(d, base)
    console = results_console(args.json)
    print_design(d, base, console)
    Store(args.db).close()  # a bad --db is bad input, found before any run
    started = _connect(base)
    outcome = ProfilingOutcome()
    try:
        with Store(args.db) as store, Console(stderr=True).status("profiling") as status:
            def on_run(i: int, point: Any, result: Any) -> None:
                status.update(f"profiling: {i + 1}/{len(d.points)} settings done")

            run_design(d, base, store, on_run=on_run, outcome=outcome)
    except KeyboardInterrupt as exc:
        print_spent(outcome, console, f"{interrupted_line(exc)} after")
        raise
    except BaseException:
        print_spent(outcome, console, "failed after")
        raise
    finally:
        if started:
            from rayjoule.cluster.connect import disconnect

            disconnect()
    print_spent(outcome, console, "done:")
    console.print(f"next: python -m rayjoule.predict --workload {d.workload} --size "
                  f"{base.size:g} --db {args.db}")
    if args.json:
        write_json(args.json, {"design": d.to_dict(), "spent": outcome.to_dict()})
    return 0


def _connect(base: Any) -> bool:
    """One Ray instance for every profiling run (not one per run); True if started here."""
    if base.framework != "ray":
        return False
    from rayjoule.cluster.connect import connect

    return connect(base.address, keep_alive=base.keep_alive)


def print_design(d: ProfileDesign, base: Any, console: Console) -> None:
    """What will run, before it runs: every setting and size, and the number of runs."""
    table = Table(title=escape(f"profiling {d.workload} on {d.framework}"))
    table.add_column("#", justify="right")
    table.add_column("size", justify="right")
    table.add_column("role")
    for stage in d.varied:
        table.add_column(f"{stage} tasks" if len(d.varied) > 1 else "tasks", justify="right")
        table.add_column(f"{stage} cpus" if len(d.varied) > 1 else "cpus", justify="right")
    table.add_column("concurrency", justify="right")
    table.add_column("runs", justify="right")
    for i, p in enumerate(d.points):
        row = [str(i + 1), f"{p.size:g}", p.role]
        for stage in d.varied:
            cpus = p.num_cpus.get(stage, base.num_cpus.get(stage, 1.0)
                                  if isinstance(base.num_cpus, dict) else base.num_cpus)
            row += [str(p.tasks[stage]), f"{cpus:g}"]
        row.append(str(base.concurrency if p.concurrency is None else p.concurrency))
        row.append(str(d.repeats_of(p)))
        table.add_row(*row)
    console.print(table)
    # the plan on a line of its own: a table's title wraps at the table's (narrow) width
    console.print(f"plan: {plan_line(d)}", markup=False, highlight=False)
    larger = ", ".join(f"{s:g}" for s in d.sizes[1:])
    console.print(f"sizes {', '.join(f'{s:g}' for s in d.sizes)}: the grid at {d.sizes[0]:g}, "
                  f"the anchors (ends of the task counts) at {larger}; {d.n_runs} runs")
    for stage, why in d.fixed.items():
        console.print(f"stage {stage} stays fixed: {why}")


def plan_line(d: ProfileDesign) -> str:
    """``6 grid settings × 2 repeats + 2 anchors × 1 = 14 runs``."""
    grid = [p for p in d.points if p.role == "grid"]
    anchors = [p for p in d.points if p.role == "anchor"]
    line = f"{len(grid)} grid settings × {d.repeats} repeats"
    if anchors:
        line += f" + {len(anchors)} anchors × {d.anchor_repeats}"
    return f"{line} = {d.n_runs} runs"


def print_spent(outcome: ProfilingOutcome, console: Console, what: str) -> None:
    m = outcome.meter
    console.print(f"{what} {len(outcome.repeats)} profiling runs spent "
                  f"{outcome.total_j:.2f} J in {outcome.wall_s:.1f} s of runs "
                  + escape(f"[meter {m['name']}, {m['kind']}]"))


def import_flexecutor(args: Any) -> int:
    """Store one stage's flexecutor profiling JSON (nothing on error).

    Timings always; energy where the file carries an ``energy_j`` step (rayjoule's export):
    under the meter its sidecar ``FILE.meta.json`` names, with the overhead share the sidecar
    keeps per repetition, or — without a sidecar — under a meter of unknown name and kind,
    never called measured (:mod:`rayjoule.modelling.flexecutor`)."""
    from rayjoule.modelling.flexecutor import (
        SIDECAR_SUFFIX,
        UNKNOWN_METER,
        fork_meter,
        parse_flexecutor,
        read_sidecar,
        unread_steps,
    )

    _refuse(args, "--import-flexecutor", (*RUN_ONLY, "framework", "param"))
    if not args.workload or not args.stage:
        raise ConfigError("--import-flexecutor needs --workload NAME and --stage STAGE")
    size = None if args.size is None else _float("--size", args.size)
    path = Path(args.import_flexecutor)
    data = _read_json(path, "flexecutor file")
    meta_path = path.with_name(path.name + SIDECAR_SUFFIX)
    if meta_path.exists() and not meta_path.is_file():
        raise ConfigError(f"flexecutor sidecar {meta_path} is not a file")
    sidecar = read_sidecar(_read_json(meta_path, "flexecutor sidecar")) \
        if meta_path.is_file() else None
    if size is None:
        size = sidecar.size if sidecar is not None and sidecar.size is not None else 1.0
    profiles = parse_flexecutor(data, args.workload, args.stage, size,
                                None if sidecar is None else sidecar.overhead_j,
                                () if sidecar is None else sidecar.memory_from_cpus)
    with_energy = sum(p.total_j is not None for p in profiles)
    named = fork_meter(data) if sidecar is None else sidecar.meter
    meter = None if not with_energy else dict(named or UNKNOWN_METER)
    with Store(args.db) as store:
        run_ids = store_timings(store, "lithops", profiles, meter=meter)
    settings = sorted({(p.tasks, p.num_cpus, p.memory_mb) for p in profiles})
    console = results_console(args.json)
    console.print(f"imported {len(profiles)} flexecutor profiles of {args.workload} stage "
                  f"{args.stage} ({len(settings)} settings) into {args.db}")
    if meter is None:
        console.print("time only: the file carries no energy_j (flexecutor itself measures "
                      "no energy), so predictions from these profiles give wall time, not joules")
    else:
        where = (f"from {meta_path.name}" if sidecar is not None else
                 "from the file's energy_source (flexecutorGreen)" if named else
                 f"unknown: no sidecar {meta_path.name}, so neither measured nor modelled "
                 "is claimed")
        console.print(f"with energy: {with_energy} of {len(profiles)} profiles carry joules "
                      + escape(f"[meter {meter['name']}, {meter['kind']}]") + f"; meter {where}")
    unread = unread_steps(data)
    if unread:
        console.print(f"steps not read: {', '.join(unread)} (rayjoule reads read, compute, "
                      f"write, cold_start and energy_j; joules only as energy_j)",
                      markup=False, highlight=False)
    if args.json:
        write_json(args.json, {"workload": args.workload, "stage": args.stage,
                               "source": "flexecutor", "size": size,
                               "energy": None if meter is None else
                               {"profiles": with_energy, "meter": meter,
                                "sidecar": None if sidecar is None else str(meta_path)},
                               "run_ids": run_ids, "steps_not_read": unread,
                               "profiles": [p.to_dict() for p in profiles]})
    return 0


#: flags that set up profiling runs: meaningless to an import or an export, so refused
#: there rather than silently ignored
RUN_ONLY = ("sizes", "task_counts", "concurrency", "repeats", "anchor_repeats", "seed",
            "meter", "tdp_scope", "idle_seconds", "tdp_watts", "cpu_threads", "max_hours",
            "address", "keep_alive", "config", "data_store")


def _refuse(args: Any, mode: str, flags: tuple[str, ...]) -> None:
    for flag in flags:
        if getattr(args, flag) not in (None, []):
            raise ConfigError(f"--{flag.replace('_', '-')} does not go with {mode}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object hook: a key given twice is refused (json keeps the last silently,
    and a flexecutor file's second ``"(cpu, memory, workers)"`` would hide the first)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice")
        out[key] = value
    return out


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_unique_keys)
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except RecursionError:
        raise ConfigError(f"{what} {path} is not JSON this reads: nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, a duplicate key, an
        raise ConfigError(f"{what} {path} is not JSON: {exc}") from None  # int of 5000 digits
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror}") from None


def export_flexecutor(args: Any) -> int:
    """Write one stage's profiles as flexecutor's JSON plus the sidecar (nothing on error)."""
    from rayjoule.cli.common import parse_params
    from rayjoule.modelling.flexecutor import SIDECAR_SUFFIX
    from rayjoule.modelling.flexecutor_export import export_flexecutor as export

    _refuse(args, "--export-flexecutor", RUN_ONLY)
    if not args.workload:
        raise ConfigError("--export-flexecutor needs --workload NAME")
    out = Path(args.export_flexecutor)
    meta = out.with_name(out.name + SIDECAR_SUFFIX)
    check_writable(out, "--export-flexecutor")
    check_writable(meta, "--export-flexecutor (its sidecar)")
    check_not_store(out, "--export-flexecutor", args.db)
    check_not_store(meta, "--export-flexecutor (its sidecar)", args.db)
    if args.json and str(args.json) != "-" and Path(args.json).expanduser().resolve() in (
            out.expanduser().resolve(), meta.expanduser().resolve()):
        raise ConfigError(f"--json {args.json} is the export or its sidecar; give another path")
    size = None if args.size is None else _float("--size", args.size)
    params = None
    if args.param:  # typed as the workload types them, as they were stored
        from rayjoule.core.config import RunConfig

        params = RunConfig(workload=args.workload,
                           params=parse_params(args.param)).validated().params
    with Store.open_read_only(args.db) as store:  # only read: a 0-byte file stays 0 bytes
        result = export(store, args.workload, args.stage, args.framework, params, size)
    write_json(meta, result.meta())
    out.write_text(json.dumps(result.data, indent=4) + "\n", encoding="utf-8")
    console = results_console(args.json)
    console.print(f"wrote {result.repetitions} repetitions of {args.workload} stage "
                  f"{result.stage} at size {result.size:g} ({len(result.data)} settings) to "
                  f"{out}; meter and meaning in {meta}", markup=False, highlight=False)
    m = result.meter
    console.print(f"energy_j per task [meter {m['name']}, {m['kind']}]", markup=False,
                  highlight=False)
    if args.json:
        write_json(args.json, {"out": str(out), "meta": str(meta), **result.meta()})
    return 0


def _float(flag: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{flag} must be a number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{flag} must be > 0 and finite, got {text!r}")
    return value


def _int(flag: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ConfigError(f"{flag} expects whole numbers, got {text.strip()!r}") from None
