"""Does profiling + modelling beat a blind tune? Three checks of ``--sampler model``.

1. ``replay`` — on the recorded grids of ``bench_tuner.py`` (``tuner_grid_<w>.csv``, every
   point of ``rayjoule.tune``'s default Ray space measured once, at one size): take the
   profiling design's grid out of the recorded grid as profiles (the design's settings at
   its smallest size — mode tasks, tasks 1,2,4,8 at 1 CPU, plus 4 tasks × 0.5 CPU and 2 × 2
   CPUs, each at the design's paired concurrency — CPUs, or 4 for the 0.5-CPU point: 6
   evaluations; the design's anchors at a larger size have no counterpart in a one-size
   grid), fit, enqueue
   the model's seeds exactly as ``tune --sampler model`` does (the ModelSeeder itself,
   refits included; the profiles, measured at the grid's size, are told to the study as
   completed trials), let TPE go on, and count evaluations — the 6 profiles included —
   until one is within 5 % of the grid's best joules; median over ``--seeds`` seeds,
   against plain TPE on the same seeds. Targets: ≤ 5 % of the grid, fewer than TPE. When a
   profile is itself within 5 %, the evaluations the seeds + TPE after the profiles would
   have needed are reported too.
2. ``live`` — real runs: profile ``pi`` on Ray with the default design (every setting of
   its grid twice at ⅛ of a target size, the smallest and largest task count once at ½:
   14 runs on two CPUs), predict the target size (never profiled), measure a sweep of
   settings there,
   and check the predicted setting's measured joules are within 10 % of the sweep's best;
   then run a 20-trial live tune at the target size and compare the joules spent:
   profiling + one run of the prediction vs the tune (target ≤ 30 %). The same for the
   ``wordcount`` pipeline on native (map × reduce tasks; ``top`` is fixed; 10 profiling
   runs). Without RAPL
   the meter is the tdp model, by default in process scope: on a shared machine the host
   scope bills everyone else's load to these runs.

    python experiments/bench_model_tuner.py replay --seeds 20
    python experiments/bench_model_tuner.py live

Writes ``experiments/results/model_tuner_replay.csv``, ``model_tuner_replay.json`` and
``model_tuner_live.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments._results import RESULTS, write_rows  # noqa: E402
from experiments.bench_tuner import TARGET, _cast, _snap, default_space  # noqa: E402


# -- 1. replay on the recorded grids -----------------------------------------------------------
def _grid(table: Path) -> tuple[dict, dict, Any, int]:
    with table.open() as fh:
        rows = list(csv.DictReader(fh))
    cpus = max(int(r["concurrency"]) for r in rows) // 2
    space = default_space(cpus)
    grid = space.grid()
    points = {tuple(_cast(r[k], grid[k]) for k in grid): r for r in rows}
    return points, grid, space, cpus


def _seeder_class():
    from rayjoule.modelling import Profile
    from rayjoule.tuning.model_seeding import ModelSeeder

    class ReplaySeeder(ModelSeeder):
        """The tuner's seeder, learning from grid values instead of stored runs."""

        def _profiles_of(self, ft: Any) -> list[Profile]:
            p = ft.params
            r = self.grid_rows[_snap(p, self.grid)]
            tasks, cpus, conc = int(r["tasks"]), float(r["num_cpus"]), int(r["concurrency"])
            if p.get("mode", "tasks") != "tasks" or \
                    conc != self.concurrency_for({"map": (tasks, cpus)}):
                return []
            return [Profile(self.base.workload, "map", tasks, cpus, None, self.size,
                            float(r["wall_s"]), float(r["total_j"]), source="replay",
                            concurrency=conc)]

    return ReplaySeeder


def _tell_profiles(study: Any, space: Any, grid: dict, keys: list, energy: dict) -> None:
    """The profiles were measured at the grid's size: the study is told them as completed
    trials (they are counted as evaluations already), so neither the seeder nor TPE spends
    an evaluation on them again."""
    import optuna

    probe = optuna.create_study()
    trial = probe.ask()
    space.suggest(trial)
    probe.tell(trial, 0.0)
    dists = probe.trials[0].distributions
    for key in keys:
        params = dict(zip(grid, key, strict=True))
        study.add_trial(optuna.trial.create_trial(
            params={k: v for k, v in params.items() if k in dists},
            distributions=dists, value=energy[key]))


def replay(args: argparse.Namespace) -> None:
    import optuna
    from rich.console import Console

    from rayjoule.core.config import RunConfig
    from rayjoule.modelling import (
        ChosenProfiles,
        Profile,
        design,
        fit_pipeline,
        paired_concurrency,
    )
    from rayjoule.runs.session import resolve_pipeline
    from rayjoule.tuning.tuner import make_sampler

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    seeder_cls = _seeder_class()
    rows, summary = [], {}
    for table in sorted(RESULTS.glob("tuner_grid_*.csv")):
        workload = table.stem.removeprefix("tuner_grid_")
        points, grid, space, cpus = _grid(table)
        energy = {k: float(r["total_j"]) for k, r in points.items()}
        best = min(energy.values())
        meter = f"{next(iter(points.values()))['meter']}, {next(iter(points.values()))['kind']}"
        base = RunConfig(workload=workload, framework="ray", concurrency=cpus,
                         meter="tdp").validated()
        size = float(base.size)
        # the design's grid (its settings at the smallest size), each at the concurrency the
        # design pairs it with (the CPU budget of `cpus` 1-CPU tasks packed with tasks of its
        # size: 4 × 0.5 CPU run 4 at once)
        d = design(base)
        grid_points = [(p.tasks["map"], p.num_cpus.get("map", 1.0))
                       for p in d.points if p.role == "grid"]
        profile_keys = [_snap({"tasks": t, "num_cpus": c, "mode": "tasks",
                               "concurrency": paired_concurrency(cpus, {"map": (t, c)})}, grid)
                        for t, c in grid_points]
        profiles = [Profile(workload, "map", int(k[0]), float(k[3]), None, size,
                            float(points[k]["wall_s"]), energy[k], source="grid",
                            concurrency=int(k[1]))
                    for k in profile_keys]
        fitted = fit_pipeline(profiles)
        model = fitted.models["map"].to_dict()
        hit_in_profiles = next((i + 1 for i, k in enumerate(profile_keys)
                                if energy[k] <= TARGET * best), None)
        results: dict[str, list[float]] = {"model": [], "tpe": []}
        after: dict[str, list[float]] = {"model": [], "tpe": []}
        first_seeds: list[dict] = []
        for method in ("model", "tpe"):
            for seed in range(args.seeds):
                study = optuna.create_study(sampler=make_sampler("tpe", seed, space))
                offset = 0
                if method == "model":
                    offset = len(profile_keys)
                    _tell_profiles(study, space, grid, profile_keys, energy)
                    tuner = SimpleNamespace(s=SimpleNamespace(base=base, space=space,
                                                              max_seconds=None),
                                            study=study, add_callback=lambda cb: None)
                    s = seeder_cls(tuner, resolve_pipeline(base), fitted,
                                   ChosenProfiles("ray", profiles, None), Console(quiet=seed > 0),
                                   store=None)
                    s.grid, s.grid_rows = grid, points
                    enqueued = s.enqueue(s.initial_seeds(), "first fit")
                    if seed == 0:
                        first_seeds = enqueued
                        planned = s.best().settings["map"]
                n_needed = hit_in_profiles if method == "model" else None
                # disclosed apart: the first hit among the trials after the profiles (the
                # seeds and TPE), as if the profiles had found nothing
                n_after = None
                for n in range(1, args.budget + 1):
                    if n_after is not None:
                        break
                    trial = study.ask()
                    value = energy[_snap(space.suggest(trial), grid)]
                    study.tell(trial, value)
                    if method == "model":
                        s.on_trial(study, study.trials[-1])
                    if value <= TARGET * best:
                        n_after = offset + n
                n_needed = n_needed or n_after
                results[method].append(math.inf if n_needed is None else n_needed)
                after[method].append(math.inf if n_after is None else n_after)
                rows.append({"workload": workload, "method": method, "seed": seed,
                             "evaluations": n_needed, "evaluations_after_profiles": n_after,
                             "grid_size": len(energy)})
        optimum = {"tasks": planned["tasks"], "num_cpus": planned["num_cpus"],
                   "concurrency": cpus, "mode": "tasks"}
        summary[workload] = {
            "grid_size": len(energy), "best_j": best, "meter": meter,
            "profile_evaluations": len(profile_keys), "profile_points": grid_points,
            "model": {"time_form": model["params"]["time_form"],
                      "held_out_error": model["held_out_error"], "params": model["params"]},
            "predicted_optimum": optimum,
            "predicted_optimum_vs_best": energy[_snap(optimum, grid)] / best,
            "seeds_enqueued": first_seeds,
            **{f"{m}_median_evaluations": statistics.median(v) for m, v in results.items()},
            **{f"{m}_median_pct_of_grid": 100 * statistics.median(v) / len(energy)
               for m, v in results.items()},
            **{f"{m}_evaluations": v for m, v in results.items()},
            "hit_in_profiles_at": hit_in_profiles,
            "model_median_evaluations_after_profiles": statistics.median(after["model"]),
            "model_evaluations_after_profiles": after["model"],
        }
        s_ = summary[workload]
        print(f"\n{workload}: grid of {len(energy)} points, best {best:.3f} J [{meter}]")
        print(f"  model: time form {s_['model']['time_form']}, held-out error wall "
              f"{model['held_out_error']['wall_s_mape_pct']:.1f} %, joules "
              f"{model['held_out_error']['total_j_mape_pct']:.1f} % "
              f"({len(profile_keys)} profiles: {grid_points})")
        print(f"  predicted optimum {optimum}: {s_['predicted_optimum_vs_best']:.3f} × best")
        for m in ("model", "tpe"):
            print(f"  {m:<5} evaluations to ≤5 % of best over {args.seeds} seeds: median "
                  f"{s_[f'{m}_median_evaluations']:g} ({s_[f'{m}_median_pct_of_grid']:.1f} % "
                  f"of the grid); all: {results[m]}")
        if hit_in_profiles is not None:
            print(f"  (model: profile #{hit_in_profiles} is itself within 5 %; ignoring that, "
                  f"the seeds + TPE after the profiles need a median "
                  f"{s_['model_median_evaluations_after_profiles']:g} evaluations, profiles "
                  f"included: {after['model']})")
    write_rows(RESULTS / "model_tuner_replay.csv", rows)
    (RESULTS / "model_tuner_replay.json").write_text(json.dumps(summary, indent=2,
                                                                default=str) + "\n")
    print(f"\nrows: {RESULTS / 'model_tuner_replay.csv'}")


# -- 2. live runs ---------------------------------------------------------------------------------
def _sweep(base, settings: list[dict], store, repeats: int) -> list[dict]:
    import dataclasses

    from rayjoule.modelling import paired_concurrency
    from rayjoule.runs.session import run

    out = []
    for s in settings:
        # on Ray each setting runs at its paired concurrency, as its profiles and the tuner's
        # seeds do (at the base concurrency 0.5-CPU tasks would be capped like 1-CPU ones)
        conc = base.concurrency
        if base.framework == "ray":
            conc = paired_concurrency(base.concurrency, {"map": (s["tasks"], s["num_cpus"])})
        r = run(dataclasses.replace(base, repeats=repeats, concurrency=conc, **s), db=store)
        out.append({**s, "concurrency": conc, "total_j": r.energy.total_j, "wall_s": r.wall_s,
                    "spent_j": math.fsum(x.energy.total_j for x in (r.repeats or [r])),
                    "meter": f"{r.meter.name}, {r.meter.kind}"})
    return out


def _study(base, workload: str, size: Any, frameworks: str, db: Path, extra: list[str]) -> dict:
    from rayjoule.cli import tune

    out = RESULTS / f"model_tuner_live_tune_{workload}.json"
    code = tune.main(["--workload", workload, "--size", str(size), "--frameworks", frameworks,
                      "--trials", "20", "--meter", base.meter, "--idle-seconds", "0",
                      "--tdp-scope", base.tdp_scope,
                      "--db", str(db), "--study-name", f"live-{workload}-{int(time.time())}",
                      "--json", str(out), *extra])
    assert code == 0, f"tune exited {code}"
    return json.loads(out.read_text())


def _case(name: str, base, sweep_settings: list[dict], key, tune_args: tuple, store, db,
          repeats: int) -> dict:
    """Profile, predict the (unprofiled) target size, sweep it, and tune it live."""
    from rayjoule.cli.profile import plan_line
    from rayjoule.modelling import choose_profiles, design, fit_pipeline, run_design

    t0 = time.time()
    d = design(base)
    print(f"\n{name}: profiling {plan_line(d)} at sizes {d.sizes} (grid at {d.sizes[0]}, "
          f"anchors at {d.sizes[1:]}), target {base.size}", flush=True)
    spent = run_design(d, base, store)
    chosen = choose_profiles(store, base.workload, base.framework, base.params)
    fitted = fit_pipeline(chosen.profiles)
    plan = fitted.plan(float(base.size))
    predicted = key(plan.settings)
    print(f"  profiling spent {spent.total_j:.1f} J in {spent.wall_s:.1f} s of runs "
          f"[{spent.meter['name']}, {spent.meter['kind']}]; predicted {predicted}", flush=True)
    for s, m in fitted.models.items():
        e = m.held_out_error
        print(f"  {s}: time form {m.time_form}, held-out error wall {e['wall_s_mape_pct']:.1f} "
              f"%, joules {e['total_j_mape_pct']:.1f} % ({e['settings']} settings)", flush=True)
        if m.exchange:
            p = m.params()
            g, ex = p["time"]["g"], p["energy"]["e_exchange_j"]
            print(f"    exchange with {', '.join(m.fan_in_stages)}: g {g['value']:.3g} s "
                  f"[{g['ci95'][0]:.3g}, {g['ci95'][1]:.3g}], e_exchange {ex['value']:.3g} J "
                  f"[{ex['ci95'][0]:.3g}, {ex['ci95'][1]:.3g}] per object", flush=True)
    sweep = _sweep(base, sweep_settings, store, repeats)
    measured = {key(_as_settings(s, base)): s for s in sweep}
    best = min(sweep, key=lambda s: s["total_j"])
    mine = measured.get(predicted)
    if mine is None:  # the prediction lies outside the sweep: measure it too
        mine = _sweep(base, [_config_of(plan.settings, base)], store, repeats)[0]
    plan_run_j = mine["spent_j"] / repeats
    print(f"  sweep best {best['total_j']:.2f} J at {key(_as_settings(best, base))}; "
          f"predicted setting measured {mine['total_j']:.2f} J "
          f"({mine['total_j'] / best['total_j']:.3f} × best) [{best['meter']}]", flush=True)
    tuned = _study(base, base.workload, base.size, base.framework, db, list(tune_args))
    trials = [t for t in tuned["trials"] if t["total_j"] is not None]
    tune_j = math.fsum(t["total_j"] for t in trials)
    reach = next((i for i, t in enumerate(trials) if t["total_j"] <= mine["total_j"]), None)
    reach_j = None if reach is None else math.fsum(t["total_j"] for t in trials[:reach + 1])
    model_j = spent.total_j + plan_run_j
    print(f"  live tune: 20 trials spent {tune_j:.1f} J, best {tuned['best']['total_j']:.2f} J"
          f"; reached the prediction's quality at trial "
          f"{'never' if reach is None else reach} "
          f"({'-' if reach_j is None else f'{reach_j:.1f} J'}); profiling + prediction run "
          f"{model_j:.1f} J = {100 * model_j / tune_j:.1f} % of the tune", flush=True)
    return {
        "workload": base.workload, "framework": base.framework, "target_size": base.size,
        "profiled_sizes": list(d.sizes), "profile_runs": d.n_runs,
        "profile_design": d.to_dict(), "profiling_wall_s": spent.wall_s,
        "meter": spent.meter, "profiling_j": spent.total_j, "plan_run_j": plan_run_j,
        "models": {s: {"time_form": m.time_form, "held_out_error": m.held_out_error,
                       "params": m.params()} for s, m in fitted.models.items()},
        "plan": plan.to_dict(), "predicted_settings": str(predicted),
        "predicted_measured_j": mine["total_j"], "sweep_best_j": best["total_j"],
        "sweep_best_settings": str(key(_as_settings(best, base))),
        "predicted_vs_best": mine["total_j"] / best["total_j"],
        "sweep": sweep, "tune_total_j": tune_j, "tune_best_j": tuned["best"]["total_j"],
        "tune_trials": [{k: t[k] for k in ("number", "params", "total_j", "wall_s")}
                        for t in tuned["trials"]],
        "tune_reaches_prediction_at_trial": reach, "tune_j_to_reach_prediction": reach_j,
        "model_j": model_j, "model_vs_tune_pct": 100 * model_j / tune_j,
        "elapsed_s": time.time() - t0,
    }


def _as_settings(s: dict, base) -> dict:
    return {"tasks": s.get("tasks", base.tasks), "num_cpus": s.get("num_cpus", base.num_cpus)}


def _config_of(settings: dict, base) -> dict:
    if list(settings) == ["map"]:
        return {"tasks": settings["map"]["tasks"], "num_cpus": settings["map"]["num_cpus"]}
    return {"tasks": {s: v["tasks"] for s, v in settings.items()}}


def live(args: argparse.Namespace) -> None:
    from rayjoule.runs.store import Store

    cpus = os.cpu_count() or 1
    db = RESULTS / "model_tuner.sqlite"
    for f in RESULTS.glob("model_tuner.*sqlite*"):
        f.unlink()
    path = RESULTS / "model_tuner_live.json"
    out = json.loads(path.read_text()) if args.only and path.exists() else {}
    with Store(db) as store:
        for name, case in (("wordcount", _live_wordcount), ("pi", _live_pi)):
            if args.only in (None, name):
                out[name] = case(args, store, db, cpus)
                path.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"\nresults: {path}")


def _live_wordcount(args: argparse.Namespace, store, db: Path, cpus: int) -> dict:
    from rayjoule.core.config import RunConfig

    base = RunConfig(workload="wordcount", size=args.wc_size, framework="native",
                     concurrency=cpus, meter=args.meter, idle_seconds=0,
                     tdp_scope=args.tdp_scope).validated()
    sweep = [{"tasks": {"map": m, "reduce": r}} for m in (1, 2, 4, 8) for r in (1, 2, 4, 8)]

    def key(settings: dict) -> tuple:
        t = settings["tasks"] if "tasks" in settings else {
            s: v["tasks"] for s, v in settings.items()}
        return (t["map"], t["reduce"])

    # the top stage is capped at 1 task: the tune searches map and reduce only
    return _case("wordcount (native)", base, sweep, key, ("--tasks", "map=1:64,reduce=1:64"),
                 store, db, args.repeats)


def _live_pi(args: argparse.Namespace, store, db: Path, cpus: int) -> dict:
    from rayjoule.cluster.connect import connect, disconnect
    from rayjoule.core.config import RunConfig

    base = RunConfig(workload="pi", size=args.pi_size, framework="ray", concurrency=cpus,
                     meter=args.meter, idle_seconds=0, tdp_scope=args.tdp_scope).validated()
    sweep = [{"tasks": t, "num_cpus": c} for t in (1, 2, 4, 8, 16) for c in (0.5, 1.0, 2.0)]

    def key(settings: dict) -> tuple:
        s = settings.get("map", settings)
        return (int(s["tasks"]), float(s["num_cpus"]))

    connect(None, num_cpus=cpus, include_dashboard=False)
    try:
        return _case("pi (ray)", base, sweep, key, (), store, db, args.repeats)
    finally:
        disconnect()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("replay")
    r.add_argument("--seeds", type=int, default=20)
    r.add_argument("--budget", type=int, default=224, help="give up after this many")
    lv = sub.add_parser("live")
    lv.add_argument("--pi-size", default="4e8")
    lv.add_argument("--wc-size", default="2e6")
    lv.add_argument("--repeats", type=int, default=2, help="repeats of each sweep point")
    lv.add_argument("--only", choices=("pi", "wordcount"), help="run one case, keep the other's")
    lv.add_argument("--meter", default="auto")
    lv.add_argument("--tdp-scope", default="process",
                    help="tdp model scope (default process: on a shared machine the host "
                         "scope would bill other users' load to these runs)")
    args = p.parse_args(argv)
    {"replay": replay, "live": live}[args.cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
