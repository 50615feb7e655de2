"""``python -m rayjoule.tune --program MODULE:FUNCTION --space knobs.toml``: tune your own program.

Parse, check everything (bad input: one line, exit 2, nothing stored), call
:func:`rayjoule.tuning.program_tuner.run_tune`, render the trials, the defaults against
the best re-run side by side, and the fastest trial. See ``docs/programs.md``.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rayjoule.cli.common import (
    Parser,
    add_store_args,
    progress_bar,
)
from rayjoule.cli.output import human_output_to_stderr, results_console, write_json
from rayjoule.cli.render import print_storage
from rayjoule.cli.stops import interrupted_line, interrupted_status
from rayjoule.cli.tune import check_outputs, check_store
from rayjoule.core.config import max_hours_given
from rayjoule.tuning.program_loading import DRIVERS
from rayjoule.tuning.program_report import ProgramTuneReport
from rayjoule.tuning.program_tuner import prepare, run_tune, study_attrs
from rayjoule.tuning.study_guard import check_storage, check_study
from rayjoule.tuning.tuner import SAMPLERS


def build_parser() -> Parser:
    p = Parser(prog="python -m rayjoule.tune",
               description=__doc__.splitlines()[0])
    p.add_argument("--program", required=True, metavar="MODULE:FUNCTION",
                   help="package.module:FUNCTION or path/to/file.py:FUNCTION; its keyword "
                        "arguments are the knobs, its defaults the baseline")
    p.add_argument("--space", required=True, metavar="FILE.toml",
                   help="the knobs: one [knob.NAME] table each (kind, low/high or choices)")
    p.add_argument("--trials", type=int, default=20, help="trials to run now (default 20)")
    p.add_argument("--max-seconds", type=float, help="only settings whose wall time ≤ this")
    p.add_argument("--repeats", type=int, default=1, help="calls per trial; the median counts")
    p.add_argument("--rerun", type=int, default=3,
                   help="side-by-side re-runs of the defaults and each finalist "
                        "(default 3, >= 3)")
    p.add_argument("--finalists", type=int, default=2,
                   help="the cheapest settings re-run against the defaults; the best is "
                        "the cheapest of them in that re-run (default 2)")
    p.add_argument("--sampler", default="tpe", help=f"one of {', '.join(SAMPLERS)}")
    p.add_argument("--seed", type=int, help="the sampler's seed (default: random)")
    p.add_argument("--driver", default="auto", choices=DRIVERS,
                   help="inline: call the program in this process; process: a driver "
                        "process per trial (programs that call ray.init()); auto "
                        "(default): process when the function calls ray.init")
    p.add_argument("--storage", help="Optuna storage URL (default: SQLite beside --db)")
    p.add_argument("--study-name", help="default: derived from the program and its knobs")
    p.add_argument("--meter", default="auto", help="auto (default) or a meter name")
    p.add_argument("--idle-seconds", type=float, default=2.0,
                   help="idle baseline length, measured once per tune (default 2)")
    p.add_argument("--address", help="Ray cluster address (default: a local instance; "
                                      "or RAY_ADDRESS)")
    p.add_argument("--max-hours", type=float,
                   help="refuse counts of calls that cannot finish within this, at 0.35 s "
                        "a call besides the program (default 1, or RAYJOULE_MAX_HOURS)")
    add_store_args(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # everything is checked before Ray starts: bad input costs nothing and stores nothing
    with program_stdout(args.json):  # the module's top level may print as it is imported
        tune = prepare(args.program, args.space, trials=args.trials,
                       max_seconds=args.max_seconds, repeats=args.repeats, rerun=args.rerun,
                       finalists=args.finalists, sampler=args.sampler, seed=args.seed,
                       db=args.db, study_name=args.study_name, storage=args.storage,
                       address=args.address, meter=args.meter, driver=args.driver,
                       idle_seconds=args.idle_seconds, max_hours=max_hours_given(args.max_hours))
    program_file = tune.program.spec.rpartition(":")[0] if tune.program.folder else None
    check_outputs(args.db, tune.storage, {"--json": args.json},
                  inputs={"the knobs (--space)": args.space, "the program's file": program_file})
    check_storage(tune.storage, args.db)
    check_store(args.db)
    check_study(tune.storage, tune.study_name, study_attrs(tune), 1)
    out = results_console(args.json)
    # with --json - stdout is the JSON alone: what the program prints goes to stderr
    with program_stdout(args.json), progress_bar(Console(stderr=True)) as progress:
        bars: list[Any] = []

        def on_ready() -> None:
            print_storage(tune.storage, tune.study_name, out)
            bars.append(progress.add_task("trials", total=args.trials))

        def on_trial(row: dict[str, Any]) -> None:
            joules = f"{row['total_j']:.1f} J" if row["total_j"] is not None else row["state"]
            progress.update(bars[0], advance=1, description=f"trial {row['number']}: {joules}")

        report = run_tune(tune, on_trial=on_trial, on_ready=on_ready)
    print_report(report, out)
    if args.json:
        write_json(args.json, report.to_dict())
    if report.interrupted:
        done = sum(1 for t in report.trials if t["state"] == "COMPLETE")
        print(f"rayjoule: {interrupted_line()}: {done} trial(s) completed in study "
              f"{report.study_name!r} are kept; run the same command again to resume",
              file=sys.stderr)
        return interrupted_status()
    return 0


def program_stdout(json_path: str | None) -> contextlib.AbstractContextManager[Any]:
    """Where the program's own prints go while it runs: stderr when ``--json -`` takes
    stdout (its lines once came before the JSON there, which no longer parsed)."""
    if human_output_to_stderr(json_path):
        return contextlib.redirect_stdout(sys.stderr)
    return contextlib.nullcontext()


def print_report(report: ProgramTuneReport, console: Console) -> None:
    source = (f"meter {report.meter['name']}, {report.meter['kind']}" if report.meter
              else "no completed trial")
    table = Table(title=escape(f"study {report.study_name} ({len(report.trials)} trials) "
                               f"[{source}]"))
    knobs = list(report.space)
    for col in ("#", "state", *knobs, "joules", "wall s"):
        table.add_column(escape(col), justify="right")
    for t in report.trials:
        state = t["state"] + ("" if t["feasible"] else " (too slow)") + \
            (" defaults" if t["baseline"] else "")
        table.add_row(str(t["number"]), state, *(str(t["settings"].get(k, "")) for k in knobs),
                      _fmt(t["total_j"], ".2f"), _fmt(t["wall_s"], ".2f"))
    console.print(table)
    if report.best is None or report.baseline is None:
        for note in report.notes or ["no comparison against the defaults"]:
            console.print(f"[bold red]{escape(note)}[/]")
        return
    for label, fig in (("defaults", report.baseline), ("best", report.best)):
        console.print(f"[bold]{label}[/] " + escape(
            f"{fig['settings']}: {fig['total_j']:.2f} J in {fig['wall_s']:.2f} s; stages "
            + ", ".join(f"{k} {v:.2f} J" for k, v in fig["stages"].items())))
    if report.saved_j is not None and report.saved_pct is not None:
        lo, hi = report.saved_j["ci95"]
        plo, phi = report.saved_pct["ci95"]
        console.print(f"[bold]saved against the defaults[/]: {report.saved_j['median']:.2f} J "
                      f"(95 % interval {lo:.2f} to {hi:.2f}), "
                      f"{report.saved_pct['median']:.1f} % ({plo:.1f} to {phi:.1f}) "
                      f"[{escape(source)}; side by side, medians]")
    if len(report.finalists) > 1 and "rerun_median_j" in report.finalists[0]:
        console.print("finalists re-run side by side: " + escape("; ".join(
            f"{f['settings']} {f['rerun_median_j']:.2f} J (trials {f['total_j']:.2f} J)"
            for f in report.finalists)))
    if report.fastest and report.tradeoff and \
            report.fastest["settings"] != report.best["settings"]:
        t = report.tradeoff
        extra_j, extra_s = t["fastest_extra_j"], t["best_extra_s"]
        console.print(escape(
            f"fastest trial ({report.fastest['trial']}): {report.fastest['settings']} "
            f"{report.fastest['wall_s']:.2f} s; it costs {abs(extra_j):.2f} J "
            f"{'more' if extra_j >= 0 else 'less'} than the best, which takes "
            f"{abs(extra_s):.2f} s {'longer' if extra_s >= 0 else 'less'} (medians of the "
            f"{t.get('source', 'trials')})"))
    for note in report.notes:
        console.print(escape(note))


def _fmt(value: Any, spec: str) -> str:
    return "" if value is None else format(value, spec)
