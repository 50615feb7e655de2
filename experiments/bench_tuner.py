"""Tuner efficiency, measured honestly: how many evaluations does each sampler need?

1. ``record``: run the exhaustive grid of real, metered runs for a workload once
   (every tasks × concurrency × mode × num_cpus point of the default search
   space, on the local Ray instance) and store it as a CSV table.
2. ``replay``: let each sampler search that table instead of the machine, over
   ≥ 10 seeds, with exactly the search space and sampler settings of
   ``python -m rayjoule.tune``; a suggestion is snapped to its grid point and
   costs one evaluation (repeats included — that is what a live tune pays).
   Report how many evaluations each needs to get within 5 % of the grid's best
   joules, as a share of the grid's size. Target: TPE ≤ 25 %.
3. ``live``: one real 20-trial tune on the same workload, for comparison.

    python experiments/bench_tuner.py record --workload pi --size 1e8
    python experiments/bench_tuner.py replay
    python experiments/bench_tuner.py live --workload pi --size 1e8

Tables: ``experiments/results/tuner_grid_<workload>.csv`` and ``tuner_replay.csv``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments._results import RESULTS, write_rows  # noqa: E402
from rayjoule.tuning.space import Range, SearchSpace  # noqa: E402

TARGET = 1.05


def default_space(cpus: int) -> SearchSpace:
    """``rayjoule.tune``'s default space on a cluster of ``cpus`` CPUs (Ray only)."""
    return SearchSpace(("ray",), Range(1, 64), Range(1, 2 * cpus), Range(0.25, 2.0),
                       ("tasks", "actors"))


def grid_points(space: SearchSpace) -> list[dict]:
    g = space.grid()
    keys = list(g)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*g.values())]


def record(args) -> None:
    from rayjoule.cluster.connect import connect
    from rayjoule.core.config import RunConfig
    from rayjoule.runs.session import run
    from rayjoule.runs.store import Store

    cpus = os.cpu_count() or 1
    connect(None, num_cpus=cpus, include_dashboard=False)
    space = default_space(cpus)
    points = grid_points(space)
    out = RESULTS / f"tuner_grid_{args.workload}.csv"
    print(f"recording {len(points)} grid points of {args.workload} (size {args.size}) → {out}")
    rows = []
    store = Store(RESULTS / "tuner_grid.sqlite")
    t0 = time.time()
    for i, point in enumerate(points):
        cfg = RunConfig(workload=args.workload, size=args.size, framework="ray",
                        meter="auto", idle_seconds=0, repeats=args.repeats, **point)
        r = run(cfg, db=store)
        rows.append({**point, "total_j": r.energy.total_j, "dynamic_j": r.energy.dynamic_j,
                     "wall_s": r.wall_s, "meter": r.meter.name, "kind": r.meter.kind,
                     "run_id": r.run_id})
        if i % 10 == 0:
            print(f"  {i + 1}/{len(points)} {point} {r.energy.total_j:.1f} J "
                  f"({time.time() - t0:.0f} s)", flush=True)
    store.close()
    write_rows(out, rows)


def _snap(params: dict, grid: dict) -> tuple:
    """The grid point nearest to a suggestion (log distance for tasks and num_cpus)."""
    key = []
    for name, values in grid.items():
        v = params[name]
        if isinstance(values[0], str):
            key.append(v)
        elif name in ("tasks", "num_cpus"):
            key.append(min(values, key=lambda g: abs(math.log(g) - math.log(v))))
        else:
            key.append(min(values, key=lambda g: abs(g - v)))
    return tuple(key)


def replay(args) -> None:
    import optuna

    from rayjoule.tuning.tuner import make_sampler

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rows = []
    for table in sorted(RESULTS.glob("tuner_grid_*.csv")):
        workload = table.stem.removeprefix("tuner_grid_")
        with table.open() as fh:
            grid_rows = list(csv.DictReader(fh))
        cpus = max(int(r["concurrency"]) for r in grid_rows) // 2
        space = default_space(cpus)
        grid = space.grid()
        energy = {tuple(_cast(r[k], grid[k]) for k in grid): float(r["total_j"])
                  for r in grid_rows}
        best = min(energy.values())
        label = f"{grid_rows[0]['meter']}, {grid_rows[0]['kind']}"
        print(f"\n{workload}: grid of {len(energy)} points, best {best:.2f} J [{label}]; "
              f"target ≤ {TARGET:.2f} × best")
        for sampler in args.samplers:
            needed = []
            for seed in range(args.seeds):
                study = optuna.create_study(sampler=make_sampler(sampler, seed, space))
                n_needed = None
                for n in range(1, args.budget + 1):
                    trial = study.ask()
                    value = energy[_snap(space.suggest(trial), grid)]
                    study.tell(trial, value)
                    if value <= TARGET * best:
                        n_needed = n
                        break
                needed.append(n_needed if n_needed is not None else math.inf)
                rows.append({"workload": workload, "sampler": sampler, "seed": seed,
                             "evaluations": n_needed, "grid_size": len(energy)})
            finite = [n for n in needed if n != math.inf]
            med = statistics.median(needed)
            print(f"  {sampler:<7} evaluations to ≤5 % of best over {args.seeds} seeds: "
                  f"median {med:g} ({100 * med / len(energy):.1f} % of the grid), "
                  f"mean {statistics.mean(finite) if finite else math.inf:.1f}, "
                  f"max {max(needed):g}, reached in {len(finite)}/{args.seeds}")
    print(f"\nrows: {write_rows(RESULTS / 'tuner_replay.csv', rows)}")


def _cast(text: str, values: list):
    return text if isinstance(values[0], str) else type(values[0])(float(text))


def live(args) -> None:
    from rayjoule.cli import tune

    out = RESULTS / f"tuner_live_{args.workload}.json"
    tune.main(["--workload", args.workload, "--size", str(args.size), "--trials", "20",
               "--idle-seconds", "0", "--db", str(RESULTS / "tuner_live.sqlite"),
               "--study-name", f"live-{args.workload}-{int(time.time())}", "--json", str(out)])
    print(f"live tune: {out}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("record", "live"):
        s = sub.add_parser(name)
        s.add_argument("--workload", default="pi")
        s.add_argument("--size", default="1e8")
        s.add_argument("--repeats", type=int, default=1)
    r = sub.add_parser("replay")
    r.add_argument("--samplers", nargs="+", default=["tpe", "random"])
    r.add_argument("--seeds", type=int, default=10)
    r.add_argument("--budget", type=int, default=200, help="give up after this many")
    args = p.parse_args(argv)
    {"record": record, "replay": replay, "live": live}[args.cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
