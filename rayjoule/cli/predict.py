"""``python -m rayjoule.predict``: the least-energy settings per stage, predicted from profiles.

Fits each stage's time and energy models to the profiling runs in the store (``python -m
rayjoule.profile``, or imported flexecutor timings) and either optimises — the per-stage
settings with the fewest predicted joules whose wall time stays within ``--max-seconds``
with ``--confidence`` — or, with ``--at``, predicts given settings::

    python -m rayjoule.predict --workload pi --size 5e8
    python -m rayjoule.predict --workload pi --size 5e8 --max-seconds 3 --confidence 0.9
    python -m rayjoule.predict --workload wordcount --size 4e6 --at tasks=4 \\
        --at map.tasks=8,reduce.tasks=2

``--at`` takes ``tasks=N,num_cpus=C`` for every stage, ``STAGE.tasks=N`` /
``STAGE.num_cpus=C`` for one (stage keys win; CPUs default to 1). Stages profiled at one
task count only (a ``max_tasks=1`` aggregate) are not modelled: they are estimated from
their profiles, linear in size, and added to the totals as such.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import workloads
from rayjoule.cli.common import (
    Parser,
    add_store_args,
    check_writable,
    parse_params,
    results_console,
    write_json,
)
from rayjoule.core.errors import ConfigError
from rayjoule.modelling import (
    ModelError,
    StageModel,
    bucket_reads,
    fit_stage,
    optimise,
    profiles_from_store,
)
from rayjoule.modelling.profiles import Profile
from rayjoule.runs.store import Store, open_existing

COMMAND = "python -m rayjoule.predict"


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
                        "tasks=8,num_cpus=1 or train.tasks=8,test.tasks=4")
    p.add_argument("--samples", type=int, default=2000, help="posterior draws (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    add_store_args(p, writes=False)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.json:
        check_writable(args.json, "--json")
    if not 0 < args.confidence < 1:
        raise ConfigError(f"--confidence must be in (0, 1), got {args.confidence}")
    if args.samples < 100:
        raise ConfigError(f"--samples must be >= 100, got {args.samples}")
    if args.at and args.max_seconds is not None:
        raise ConfigError("--at predicts given settings; --max-seconds bounds the optimiser: "
                          "give one or the other")
    params = None
    if args.param:
        from rayjoule.core.config import RunConfig

        params = RunConfig(workload=args.workload,
                           params=parse_params(args.param)).validated().params
    with open_existing(args.db) as store:
        chosen = choose_profiles(store, args.workload, args.framework, params)
    fitted = fit_all(chosen.profiles)
    size = _size(args.size, chosen.profiles)
    at = [parse_at(text, fitted.order) for text in args.at]
    if at:
        predictions = [fitted.plan(size, settings=s, samples=args.samples, seed=args.seed)
                       for s in at]
    else:
        predictions = [fitted.plan(size, max_seconds=args.max_seconds,
                                   confidence=args.confidence, samples=args.samples,
                                   seed=args.seed)]
    payload = {"workload": args.workload, "framework": chosen.framework, "size": size,
               "mode": "at" if at else "optimise", "meter": chosen.meter,
               "profiles": chosen.summary(),
               "models": {s: m.to_dict() for s, m in fitted.models.items()},
               "fixed_stages": {s: f.to_dict() for s, f in fitted.fixed.items()},
               "predictions": predictions}
    print_predictions(payload, results_console())
    if args.json:
        write_json(args.json, payload)
    return 0


# -- choosing and fitting profiles ---------------------------------------------------------
@dataclass
class Chosen:
    """The profiles one prediction uses, and where their energy came from."""

    framework: str | None
    profiles: list[Profile]
    meter: dict[str, str] | None

    def summary(self) -> dict[str, Any]:
        stages: dict[str, int] = {}
        for p in self.profiles:
            stages[p.stage] = stages.get(p.stage, 0) + 1
        return {"count": len(self.profiles), "by_stage": stages,
                "sizes": sorted({p.size for p in self.profiles}),
                "sources": sorted({p.source for p in self.profiles})}


def choose_profiles(store: Store, workload: str, framework: str | None,
                    params: Mapping[str, Any] | None = None) -> Chosen:
    """The store's profiles of ``workload`` on one framework with one parameter set.

    Profiles of different frameworks or workload parameters describe different programs:
    mixing them would fit neither, so a store holding several needs ``--framework`` /
    ``--param`` to pick one.
    """
    rows = []
    for row in store.runs(workload=workload, status="ok"):
        config = json.loads(row["config_json"] or "{}")
        if config.get("profile"):
            rows.append((row, config))
    frameworks = sorted({row["framework"] for row, _ in rows})
    if framework is None and len(frameworks) > 1:
        raise ConfigError(f"the store holds profiles of {workload!r} on several frameworks "
                          f"({', '.join(frameworks)}); pick one with --framework")
    framework = framework or (frameworks[0] if frameworks else None)
    rows = [(r, c) for r, c in rows if r["framework"] == framework]
    if params is None:
        sets = sorted({json.dumps(c.get("params") or {}, sort_keys=True) for _, c in rows})
        if len(sets) > 1:
            raise ConfigError(f"the store holds profiles of {workload!r} with several workload "
                              f"parameter sets ({'; '.join(sets)}); pick one with --param")
    profiles = profiles_from_store(store, workload, framework, params,
                                   exchanges=exchanges_of(workload, [c for _, c in rows]))
    if not profiles:
        where = f" on {framework}" if framework else ""
        raise ModelError(f"no profiling runs of {workload!r}{where} in {store.path}; run "
                         f"python -m rayjoule.profile --workload {workload} first (the models "
                         "need at least 5 settings over 4 task counts per stage)")
    meters = sorted({(r["meter"], r["kind"]) for r, _ in rows if r["meter"]})
    meter = None if not meters else {"name": "+".join(sorted({m for m, _ in meters})),
                                     "kind": "+".join(sorted({k for _, k in meters}))}
    return Chosen(framework, profiles, meter)


def exchanges_of(workload: str, configs: list[Mapping[str, Any]]) -> dict[str, tuple[str, ...]]:
    """The stages of ``workload`` that read others through a shuffle (bucket route).

    Profiles rayjoule ran come from a pipeline it can load (a failure to load it is the
    user's to see); imported timings (flexecutor's, of a name rayjoule need not know) are
    single stages and have none.
    """
    if not any(c.get("source", "rayjoule") == "rayjoule" for c in configs):
        return {}
    return bucket_reads(workloads.get_pipeline(workload))


@dataclass(frozen=True)
class FixedStage:
    """A stage profiled at one setting only: estimated from its profiles, linear in size.

    The optimiser cannot choose its settings (a ``max_tasks=1`` aggregate); its time and
    joules still belong in a pipeline's totals.
    """

    stage: str
    tasks: int
    num_cpus: float
    sizes: tuple[float, ...]
    wall: tuple[float, float, float]  # intercept, slope, residual sd
    energy: tuple[float, float, float] | None

    @classmethod
    def fit(cls, profiles: list[Profile]) -> FixedStage:
        sizes = np.array([p.size for p in profiles])

        def line(y: np.ndarray) -> tuple[float, float, float]:
            if np.ptp(sizes) == 0:
                return float(y.mean()), 0.0, float(y.std(ddof=1)) if y.size > 1 else 0.0
            slope, icept = np.polyfit(sizes, y, 1)
            resid = y - (icept + slope * sizes)
            sd = float(np.sqrt(resid @ resid / (y.size - 2))) if y.size > 2 else 0.0
            return float(icept), float(slope), sd

        e = [p.total_j for p in profiles if p.total_j is not None]
        return cls(profiles[0].stage, profiles[0].tasks, profiles[0].num_cpus,
                   tuple(sorted(set(sizes.tolist()))), line(np.array([p.wall_s for p in profiles])),
                   line(np.array(e)) if len(e) == len(profiles) else None)

    def estimate(self, size: float) -> dict[str, Any]:
        def at(c: tuple[float, float, float] | None) -> dict[str, Any] | None:
            if c is None:
                return None
            mid = max(c[0] + c[1] * size, 0.0)
            return {"median": mid, "ci95": [max(mid - 1.96 * c[2], 0.0), mid + 1.96 * c[2]]}

        warnings = []
        if not self.sizes[0] <= size <= self.sizes[-1]:
            warnings.append(f"stage {self.stage!r} (fixed): size={size:g} is outside the "
                            f"profiled range {self.sizes[0]:g}..{self.sizes[-1]:g}; its "
                            "estimate extrapolates")
        return {"settings": {"tasks": self.tasks, "num_cpus": self.num_cpus},
                "wall_s": at(self.wall), "total_j": at(self.energy), "warnings": warnings}

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "tasks": self.tasks, "num_cpus": self.num_cpus,
                "sizes": list(self.sizes), "form": "intercept + slope × size",
                "wall_s": dict(zip(("intercept", "slope", "resid_sd"), self.wall, strict=True)),
                "total_j": None if self.energy is None else
                dict(zip(("intercept", "slope", "resid_sd"), self.energy, strict=True))}


@dataclass
class Fitted:
    """Per-stage models (in pipeline order) and the fixed stages' estimates."""

    models: dict[str, StageModel]
    fixed: dict[str, FixedStage] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def plan(self, size: float, settings: dict[str, dict[str, Any]] | None = None,
             max_seconds: float | None = None, confidence: float = 0.95,
             candidates: dict[str, dict[str, list]] | None = None, samples: int = 2000,
             seed: int = 0) -> dict[str, Any]:
        """Optimise (or, with ``settings``, predict those) and add the fixed stages.

        The result is :meth:`Plan.to_dict` with the fixed stages' settings and estimates
        added to ``settings``/``wall_s``/``total_j`` and listed under ``fixed_stages``.
        """
        fixed = {s: f.estimate(size) for s, f in self.fixed.items()}
        fixed_t = sum(f["wall_s"]["median"] for f in fixed.values())
        bound = max_seconds
        if max_seconds is not None and fixed:
            bound = max_seconds - fixed_t
            if bound <= 0:
                raise ModelError(f"the fixed stage(s) {', '.join(fixed)} alone take about "
                                 f"{fixed_t:.3g} s, beyond --max-seconds {max_seconds:g}")
        ignored = []
        if settings is not None:
            candidates = {s: {"tasks": [v["tasks"]], "num_cpus": [v.get("num_cpus", 1.0)]}
                          for s, v in settings.items() if s in self.models}
            ignored = [s for s, f in fixed.items() if s in settings
                       and (settings[s]["tasks"], settings[s]["num_cpus"])
                       != (f["settings"]["tasks"], f["settings"]["num_cpus"])]
        plan = optimise(self.models, size, candidates=candidates, max_seconds=bound,
                        confidence=confidence, n_samples=samples, seed=seed,
                        fixed_tasks={s: int(f["settings"]["tasks"])
                                     for s, f in fixed.items()}).to_dict()
        plan["max_seconds"] = max_seconds
        for stage, f in fixed.items():
            plan["settings"][stage] = f["settings"]
            plan["warnings"].extend(f["warnings"])
            for key in ("wall_s", "total_j"):
                if plan[key] is not None and f[key] is not None:
                    plan[key]["median"] += f[key]["median"]
                    plan[key]["ci95"] = [a + b for a, b in zip(plan[key]["ci95"], f[key]["ci95"],
                                                               strict=True)]
        for stage in ignored:
            plan["warnings"].append(f"stage {stage!r} is fixed (profiled at one setting only): "
                                    "its profiled setting is predicted, not the one asked")
        if fixed:
            plan["warnings"].append(f"totals include the fixed stage(s) {', '.join(fixed)} as "
                                    "size-linear estimates; their intervals are added, not "
                                    "sampled")
        plan["settings"] = {s: plan["settings"][s] for s in self.order if s in plan["settings"]}
        plan["fixed_stages"] = fixed
        return plan


def fit_all(profiles: list[Profile]) -> Fitted:
    """Fit every stage; a stage profiled at a single setting (never varied) is fixed.

    Raises ModelError (one line naming what is missing) when a stage that was varied has
    too few profiles, or when no stage varies at all.
    """
    order = list(dict.fromkeys(p.stage for p in profiles))
    by_stage = {s: [p for p in profiles if p.stage == s] for s in order}
    single = {s for s, ps in by_stage.items() if len({(p.tasks, p.num_cpus) for p in ps}) == 1}
    if len(single) == len(order):
        single = set()  # nothing varies: let fit_stage say how many more settings it needs
    models = {s: fit_stage(by_stage[s]) for s in order if s not in single}
    fixed = {s: FixedStage.fit(by_stage[s]) for s in order if s in single}
    return Fitted(models, fixed, order)


def parse_at(text: str, stages: list[str]) -> dict[str, dict[str, Any]]:
    """``"tasks=8,num_cpus=1"`` / ``"train.tasks=8"`` → stage → {tasks, num_cpus}.

    >>> parse_at("tasks=2,b.tasks=8,b.num_cpus=0.5", ["a", "b"])
    {'a': {'tasks': 2, 'num_cpus': 1.0}, 'b': {'tasks': 8, 'num_cpus': 0.5}}
    """
    common: dict[str, Any] = {}
    own: dict[str, dict[str, Any]] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        stage, _, name = key.strip().rpartition(".")
        if not sep or name not in ("tasks", "num_cpus"):
            raise ConfigError(f"--at expects [STAGE.]tasks=N,[STAGE.]num_cpus=C; got {text!r}")
        if stage and stage not in stages:
            raise ConfigError(f"--at: unknown stage {stage!r} (profiled stages: "
                              f"{', '.join(stages)})")
        try:
            number = int(value) if name == "tasks" else float(value)
        except ValueError:
            raise ConfigError(f"--at: {key.strip()} must be a number, got {value!r}") from None
        (own.setdefault(stage, {}) if stage else common)[name] = number
    out = {}
    for stage in stages:
        merged = {"num_cpus": 1.0, **common, **own.get(stage, {})}
        if "tasks" not in merged:
            raise ConfigError(f"--at {text!r} gives no tasks for stage {stage!r}")
        if merged["tasks"] < 1 or not merged["num_cpus"] > 0:
            raise ConfigError(f"--at {text!r}: tasks must be >= 1 and num_cpus > 0")
        out[stage] = {"tasks": merged["tasks"], "num_cpus": float(merged["num_cpus"])}
    return out


def _size(size: float | None, profiles: list[Profile]) -> float:
    if size is not None:
        if not size > 0:
            raise ConfigError(f"--size must be > 0, got {size:g}")
        return float(size)
    sizes = sorted({p.size for p in profiles})
    if len(sizes) == 1:
        return sizes[0]
    raise ConfigError(f"give --size: the profiles span sizes {sizes[0]:g}..{sizes[-1]:g}")


# -- rendering ------------------------------------------------------------------------------
def _ci(e: dict[str, Any] | None, fmt: str) -> str:
    if e is None:
        return "—"
    lo, hi = e["ci95"]
    return f"{e['median']:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def print_predictions(payload: dict[str, Any], console: Console) -> None:
    """Per-stage settings, wall and joules with 95% intervals, held-out errors, warnings."""
    m = payload["meter"]
    label = escape(f"[predicted from profiles metered by {m['name']}, {m['kind']}]") if m \
        else escape("[time-only profiles: no energy]")
    prof = payload["profiles"]
    console.print(f"[bold]{payload['workload']}[/] at size {payload['size']:g}"
                  f"{' on ' + payload['framework'] if payload['framework'] else ''}: "
                  f"{prof['count']} profiles ({', '.join(prof['sources'])}) at sizes "
                  f"{', '.join(f'{s:g}' for s in prof['sizes'])}")
    for model in payload["models"].values():
        err = model["held_out_error"]
        e_err = err["total_j_mape_pct"]
        ups = model["params"].get("fan_in_stages")
        exchange = f" + exchange with {', '.join(ups)} (shuffle)" if ups else ""
        console.print(f"  model {model['stage']}: time form {model['params']['time_form']}"
                      f"{exchange}, held-out error ({err['method']}, {err['settings']} settings) "
                      f"wall {err['wall_s_mape_pct']:.1f} %"
                      + (f", joules {e_err:.1f} %" if e_err is not None else ", no energy"))
    for i, p in enumerate(payload["predictions"]):
        head = ("settings with the fewest predicted joules" if p["objective"] == "energy"
                else "fastest settings (time-only models)") if payload["mode"] == "optimise" \
            else f"prediction {i + 1}"
        table = Table(title=f"{head} {label}")
        for col in ("stage", "tasks", "cpus", "wall s [95% CI]", "joules [95% CI]",
                    "held-out err wall/J %"):
            table.add_column(col, justify="right")
        for stage, st in p["settings"].items():
            pred = p["stages"].get(stage) or p["fixed_stages"].get(stage)
            err = p["held_out_error"].get(stage)
            err_txt = "fixed stage" if err is None else (
                f"{err['wall_s_mape_pct']:.1f} / "
                + ("—" if err["total_j_mape_pct"] is None else f"{err['total_j_mape_pct']:.1f}"))
            table.add_row(stage, str(st["tasks"]), f"{st['num_cpus']:g}",
                          _ci(pred["wall_s"], ".3g"), _ci(pred["total_j"], ".3g"), err_txt)
        table.add_row("[bold]total[/]", "", "", _ci(p["wall_s"], ".3g"), _ci(p["total_j"], ".3g"),
                      "")
        console.print(table)
        if p.get("p_within_bound") is not None:
            console.print(f"  P(wall ≤ {p['max_seconds']:g} s) = {p['p_within_bound']:.3f} "
                          f"(asked for ≥ {p['confidence']:.2f})")
        for w in dict.fromkeys(p["warnings"]):
            console.print(f"  [yellow]warning:[/] {escape(w)}")
