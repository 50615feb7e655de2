"""``python -m rayjoule.predict``: the least-energy settings per stage, predicted from profiles.

Fits each stage's time and energy models to the profiling runs in the store (``python -m
rayjoule.profile``, or imported flexecutor timings) and either optimises — the per-stage
settings with the fewest predicted joules whose wall time stays within ``--max-seconds``
with ``--confidence`` — or, with ``--at``, predicts given settings::

    python -m rayjoule.predict --workload pi --size 5e8
    python -m rayjoule.predict --workload pi --size 5e8 --max-seconds 3 --confidence 0.9
    python -m rayjoule.predict --workload wordcount --size 4e6 --at tasks=4 \\
        --at map.tasks=8,reduce.tasks=2

``--at`` takes ``tasks=N,num_cpus=C,memory=M`` for every stage, ``STAGE.tasks=N`` /
``STAGE.num_cpus=C`` / ``STAGE.memory=M`` for one (stage keys win; CPUs default to 1;
memory, MB per task, is a setting only where the profiles vary it — elsewhere it is
ignored with a warning on stderr). Stages profiled at one task count only (a
``max_tasks=1`` aggregate) are not modelled: they are estimated from their profiles,
linear in size, and added to the totals as such.

Times are reported apart: ``exec`` (what the profiles measured, what the time law predicts
and the held-out error scores), ``cold start`` (drawn from the cold starts the profiles
kept apart: flexecutor's; none for rayjoule's own) and ``wall`` (their sum).
"""

from __future__ import annotations

import math
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rayjoule.cli.common import Parser, add_store_args, parse_params
from rayjoule.cli.output import check_not_store, check_writable, results_console, write_json
from rayjoule.core.errors import ConfigError
from rayjoule.modelling import Estimate, PredictionReport, StageSettings, plan_from_store
from rayjoule.runs.store import Store

COMMAND = "python -m rayjoule.predict"
#: the most posterior draws: each is a row of every model's parameters (8 B each) and a
#: prediction per setting, so 10**9 draws want ~30 GiB before any answer; 10**6 is
#: already a ±0.1 % Monte-Carlo error on a 95 % interval's ends
MAX_SAMPLES = 1_000_000


def build_parser() -> Parser:
    p = Parser(prog=COMMAND, description=__doc__.splitlines()[0])
    p.add_argument("--workload", required=True, help="the profiled workload or pipeline name")
    p.add_argument("--size", type=float,
                   help="input size to predict for (default: the only profiled size, if one)")
    p.add_argument("--framework", help="use the profiles run on this framework (needed when "
                                       "the store holds several)")
    p.add_argument("--param", action="append", default=[], metavar="K=V",
                   help="use the profiles with these workload parameters")
    p.add_argument("--max-seconds", type=float, help="time bound on the whole run")
    p.add_argument("--confidence", type=float, default=0.95,
                   help="probability the bound must hold with (default 0.95)")
    p.add_argument("--at", action="append", default=[], metavar="SETTINGS",
                   help="predict these settings instead of optimising (repeatable): "
                        "tasks=8,num_cpus=1[,memory=MB] or train.tasks=8,test.tasks=4")
    p.add_argument("--samples", type=int, default=2000,
                   help=f"posterior draws, 100 to {MAX_SAMPLES:,} (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    add_store_args(p, writes=False)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.json:
        check_writable(args.json, "--json")
        check_not_store(args.json, "--json", args.db)
    if not 0 < args.confidence < 1:
        raise ConfigError(f"--confidence must be in (0, 1), got {args.confidence}")
    if not 100 <= args.samples <= MAX_SAMPLES:
        raise ConfigError(f"--samples must be 100 to {MAX_SAMPLES}, got {args.samples}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}")
    if args.size is not None and not (args.size > 0 and math.isfinite(args.size)):
        raise ConfigError(f"--size must be > 0 and finite, got {args.size:g}")
    if args.max_seconds is not None and not (args.max_seconds > 0
                                             and math.isfinite(args.max_seconds)):
        raise ConfigError(f"--max-seconds must be > 0 and finite, got {args.max_seconds:g}")
    if args.at and args.max_seconds is not None:
        raise ConfigError("--at predicts given settings; --max-seconds bounds the optimiser: "
                          "give one or the other")
    at = [parse_at(text) for text in args.at]
    params = None
    if args.param:
        from rayjoule.core.config import RunConfig

        params = RunConfig(workload=args.workload,
                           params=parse_params(args.param)).validated().params
    with Store.open_read_only(args.db) as store:  # only read: a 0-byte file stays 0 bytes
        report = plan_from_store(store, args.workload, framework=args.framework,
                                 params=params, size=args.size, at=at,
                                 max_seconds=args.max_seconds, confidence=args.confidence,
                                 samples=args.samples, seed=args.seed)
    for line in report.input_warnings:
        print(line, file=sys.stderr)
    print_predictions(report, results_console(args.json))
    if args.json:
        write_json(args.json, report.to_dict())
    return 0


def parse_at(text: str) -> StageSettings:
    """``"tasks=8,num_cpus=1"`` / ``"train.tasks=8"`` → settings for every stage / one stage;
    ``memory=M`` (or ``memory_mb=M``) is memory in MB per task.

    >>> parse_at("tasks=2,b.tasks=8,b.num_cpus=0.5").resolve(["a", "b"])
    {'a': {'tasks': 2, 'num_cpus': 1.0}, 'b': {'tasks': 8, 'num_cpus': 0.5}}
    >>> parse_at("tasks=4,memory=2048").resolve(["a"])
    {'a': {'tasks': 4, 'num_cpus': 1.0, 'memory_mb': 2048.0}}
    """
    common: dict[str, float] = {}
    own: dict[str, dict[str, float]] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        stage, dot, name = key.strip().rpartition(".")
        name = "memory_mb" if name == "memory" else name
        if not sep or name not in ("tasks", "num_cpus", "memory_mb") or (dot and not stage):
            raise ConfigError(f"--at expects [STAGE.]tasks=N,[STAGE.]num_cpus=C,"
                              f"[STAGE.]memory=M; got {text!r}")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"--at: {key.strip()} must be a number, got {value!r}") from None
        if not math.isfinite(number) or (name == "tasks" and number != int(number)):
            what = "a whole number" if name == "tasks" else "a finite number"
            raise ConfigError(f"--at: {key.strip()} must be {what}, got {value!r}")
        target = own.setdefault(stage, {}) if stage else common
        if name in target:
            raise ConfigError(f"--at {text!r} gives {key.strip()} twice")
        target[name] = int(number) if name == "tasks" else number
    return StageSettings(text, common, own)


# -- rendering ------------------------------------------------------------------------------
def _values(values: dict[str, dict[str, list[float]]]) -> str:
    """``map tasks=15 num_cpus=1|2 memory_mb=400..12288 (13 values)``, stage by stage."""
    def one(vs: list[float]) -> str:
        if len(vs) <= 4:
            return "|".join(f"{v:g}" for v in vs)
        return f"{vs[0]:g}..{vs[-1]:g} ({len(vs)} values)"
    return "; ".join(f"{stage} " + " ".join(f"{k}={one(vs)}" for k, vs in st.items())
                     for stage, st in values.items())


def _ci(e: Estimate | None, fmt: str) -> str:
    if e is None:
        return "—"
    return f"{e.median:{fmt}} [{e.low:{fmt}}, {e.high:{fmt}}]"


def print_predictions(report: PredictionReport, console: Console) -> None:
    """Per-stage settings, exec time, cold start and wall time (where the profiles kept cold
    starts apart) and joules with 95% intervals, held-out errors, the settings within 5 % of
    the optimum where there are several, warnings."""
    m = report.chosen.meter
    label = escape(f"[predicted from profiles metered by {m['name']}, {m['kind']}]") if m \
        else escape("[time-only profiles: no energy]")
    prof = report.chosen.summary()
    framework = report.chosen.framework
    console.print(f"[bold]{report.workload}[/] at size {report.size:g}"
                  f"{' on ' + framework if framework else ''}: "
                  f"{prof['count']} profiles ({', '.join(prof['sources'])}) at sizes "
                  f"{', '.join(f'{s:g}' for s in prof['sizes'])}")
    for model in report.model.models.values():
        err = model.held_out_error
        e_err = err["total_j_mape_pct"]
        ups = model.fan_in_stages
        exchange = f" + exchange with {', '.join(ups)} (shuffle)" if ups else ""
        memory = (" + memory (W/GB held)" if model.energy_memory else "") \
            if model.memory_setting else ""
        slots = f" ({model.slots} slots)" if model.slots else ""
        console.print(f"  model {model.stage}: time form {model.time_form}{slots}"
                      f"{exchange}{memory}, held-out error ({err['method']}, {err['settings']} "
                      f"settings) exec {err['exec_s_mape_pct']:.1f} %"
                      + (f", joules {e_err:.1f} %" if e_err is not None else ", no energy"))
    for i, p in enumerate(report.predictions):
        head = ("settings with the fewest predicted joules" if p.objective == "energy"
                else "fastest settings (time-only models)") if report.mode == "optimise" \
            else f"prediction {i + 1}"
        # the label on a line of its own, so a narrow table's title never splits it
        table = Table(title=f"{head}: medians [95% CI]"
                      + (", wall = exec + cold start" if p.cold_start_s is not None else "")
                      + f"\n{label}")
        memory = any("memory_mb" in st for st in p.settings.values())
        cold = p.cold_start_s is not None
        cols = ["stage", "tasks", "cpus", *(["mem MB"] if memory else []),
                "exec s", *(["cold s", "wall s"] if cold else []),
                "joules", "held-out % exec/J"]
        for col in cols:
            table.add_column(col, justify="right")
        for stage, st in p.settings.items():
            pred = p.stages.get(stage) or p.fixed_stages[stage]
            modelled = p.stages.get(stage)
            err_txt = "fixed stage" if modelled is None else (
                f"{modelled.held_out_error['exec_s_mape_pct']:.1f} / "
                + ("—" if modelled.held_out_error["total_j_mape_pct"] is None
                   else f"{modelled.held_out_error['total_j_mape_pct']:.1f}"))
            mem = [f"{st['memory_mb']:g}" if "memory_mb" in st else "—"] if memory else []
            times = [_ci(pred.cold_start_s, ".3g"), f"{pred.wall_s.median:.3g}"] if cold else []
            table.add_row(stage, str(st["tasks"]), f"{st['num_cpus']:g}", *mem,
                          _ci(pred.exec_s, ".3g"), *times, _ci(pred.total_j, ".3g"), err_txt)
        table.add_row("[bold]total[/]", "", "", *([""] if memory else []), _ci(p.exec_s, ".3g"),
                      *([_ci(p.cold_start_s, ".3g"), f"{p.wall_s.median:.3g}"] if cold else []),
                      _ci(p.total_j, ".3g"), "")
        console.print(table)
        near = p.near_optimal
        if report.mode == "optimise" and near is not None and near.flat:
            console.print(f"  flat within the noise — settings within {near.within_pct:g} % of "
                          f"the optimum ({near.count} plans): " + escape(_values(near.values)))
        if p.p_within_bound is not None:
            console.print(f"  P(wall ≤ {p.max_seconds:g} s) = {p.p_within_bound:.3f} "
                          f"(asked for ≥ {p.confidence:.2f})")
        for w in dict.fromkeys(p.warnings):
            console.print(f"  [yellow]warning:[/] {escape(w)}")
