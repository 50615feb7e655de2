"""Issue 22: the program tuner's overhead per trial (everything but the program's own time).

Each trial is one metered call of the program; after it, the measured block waits for Ray's
task events (one report interval + a grace) before attributing the trial. A tune that starts
its own local Ray instance now starts it with a 0.1 s report interval
(``rayjoule.tuning.program_tuner.LOCAL_RAY_ENV``); a ``RAY_task_events_report_interval_ms``
the user set wins. So both settings are measured in one run of this script, each in a fresh
driver process with a fresh local instance:

* ``before``: ``RAY_task_events_report_interval_ms=1000`` set (Ray's default: the tune as it
  was before issue 22's change);
* ``after``: not set (the tune's own 0.1 s).

The program is a tiny Ray Core one (``tasks`` tasks of ~10 ms each), so the overhead is not
hidden by the program's time. Prints ``tuner_overhead_s`` (median, max over the trials, as
the tune's report gives it) for each setting and writes them to
``experiments/results/program_tuner_overhead.csv``.

    python experiments/bench_program_overhead.py [--trials 12] [--meter auto]
        [--driver inline|process]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import ray

HERE = Path(__file__).resolve()
ENV_KEY = "RAY_task_events_report_interval_ms"
SPACE = {"tasks": {"kind": "int", "low": 1, "high": 4}}


@ray.remote
def _chunk(n: int) -> int:
    return sum(i * i for i in range(n))


def tiny(tasks: int = 2, size: int = 400_000) -> int:
    """Ray Core: ``tasks`` tasks share ``size`` units of work (~0.05 s in all)."""
    return sum(ray.get([_chunk.options(name="tiny.chunk").remote(size // tasks)
                        for _ in range(tasks)]))


def _one(args: argparse.Namespace) -> None:
    """In a child driver: one tune, its overhead figures as a JSON line."""
    import rayjoule

    with tempfile.TemporaryDirectory() as tmp:
        report = rayjoule.tune_program(f"{HERE}:tiny", SPACE, trials=args.trials,
                                       sampler="random", seed=0, db=Path(tmp) / "r.sqlite",
                                       meter=args.meter, idle_seconds=args.idle_seconds,
                                       driver=args.driver)
    walls = [t["wall_s"] for t in report.trials if t.get("wall_s") is not None]
    # the short interval must not cost attribution: the program's tasks are still found
    stages = {side: sorted((getattr(report, side) or {}).get("stages", {}))
              for side in ("baseline", "best")}
    print(json.dumps({"overhead_s": report.tuner_overhead_s, "meter": report.meter,
                      "stages": stages,
                      "trials": len(report.trials),
                      "program_wall_s_median": sorted(walls)[len(walls) // 2]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--meter", default="auto")
    parser.add_argument("--idle-seconds", type=float, default=2.0)
    parser.add_argument("--driver", choices=("inline", "process"), default="inline")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _one(args)
    rows = []
    for label, interval in (("before", "1000"), ("after", None)):
        env = {k: v for k, v in os.environ.items() if k not in (ENV_KEY, "RAY_ADDRESS")}
        if interval:
            env[ENV_KEY] = interval
        out = subprocess.run([sys.executable, str(HERE), "--child", "--trials",
                              str(args.trials), "--meter", args.meter, "--idle-seconds",
                              str(args.idle_seconds), "--driver", args.driver],
                             env=env, capture_output=True, text=True, check=True)
        fig = json.loads(out.stdout.strip().splitlines()[-1])
        row = {"setting": label, "driver": args.driver,
               "report_interval_ms": interval or "100 (tune's own)",
               "trials": fig["trials"], "overhead_median_s": round(fig["overhead_s"]["median"], 3),
               "overhead_max_s": round(fig["overhead_s"]["max"], 3),
               "program_wall_median_s": round(fig["program_wall_s_median"], 3),
               "meter": f"{fig['meter']['name']} ({fig['meter']['kind']})",
               "stages_found": all("tiny.chunk" in v for v in fig["stages"].values())}
        rows.append(row)
        print(row, flush=True)
    sys.path.insert(0, str(HERE.parent))
    from _results import RESULTS, write_rows

    name = "program_tuner_overhead" + ("" if args.driver == "inline" else f"_{args.driver}")
    print("wrote", write_rows(RESULTS / f"{name}.csv", rows))


if __name__ == "__main__":
    main()
