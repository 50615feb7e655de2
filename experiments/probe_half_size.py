"""Would one more profiling run at ½ of the target show what the target shows? A probe.

``memo`` and ``tally`` miss because the model ranks 2 tasks below 1 at the target while the
sweep ranks 1 first (experiments/RESULTS_unseen_predict.md). The profiling design already
runs 1 task at ½ of the target (an anchor); a "model-driven check" would add the model's pick
(2 tasks) there and let the measured order decide. That only works if the order at ½ is the
target's. This probe measures it: each named workload at ½ of its benchmark target, tasks 1, 2
and 4, ``--rounds`` rounds in a fresh order each (the benchmark's flags: native, concurrency 2,
``tdp`` process scope, no idle baseline), and prints the medians beside the sweep's at the
target (``experiments/results/unseen_predict.json``). Its store is a temporary one.
``--fraction 1`` measures the target again (is the sweep's order still today's?).

    nice -n -10 python experiments/probe_half_size.py memo tally
    nice -n -10 python experiments/probe_half_size.py --fraction 1 memo tally
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments.bench_unseen_predict import CASES  # noqa: E402

SWEEP = ROOT / "experiments" / "results" / "unseen_predict.json"
TASKS = (1, 2, 4)


def main(argv: list[str] | None = None) -> int:
    from rayjoule.core.config import RunConfig
    from rayjoule.runs.session import run
    from rayjoule.runs.store import Store

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="+", choices=sorted(n for n, c in CASES.items()
                                                      if list(c[2][0]) == ["map"]))
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--fraction", type=float, default=0.5,
                   help="of the target size (1: the sweep again, today)")
    args = p.parse_args(argv)
    sweeps = json.loads(SWEEP.read_text())
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "probe.sqlite") as store:
        for name in args.names:
            workload, target, _ = CASES[name]
            base = RunConfig(workload=workload, size=max(1, round(target * args.fraction)),
                             framework="native", concurrency=2, meter="tdp", idle_seconds=0,
                             tdp_scope="process").validated()
            runs: dict[int, list[float]] = {t: [] for t in TASKS}
            for _ in range(args.rounds):
                for t in rng.sample(TASKS, len(TASKS)):
                    runs[t].append(run(dataclasses.replace(base, tasks=t),
                                       db=store).energy.total_j)
            sweep = sweeps[name]["sweep"]
            for t in TASKS:
                half = statistics.median(runs[t])
                print(f"{name} tasks={t}: {args.fraction:g} × the target {half:.2f} J "
                      f"({', '.join(f'{x:.2f}' for x in runs[t])}); at the target "
                      f"{sweep[f'map={t}']['total_j']:.2f} J  [tdp[process], modelled]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
