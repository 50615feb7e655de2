"""Would picking by another statistic of the predicted joules than the median change the hits?

An offline probe on the profilings ``bench_unseen_predict.py`` kept (runs 3-7,
``experiments/results/unseen_predict/<w>/p<k>.sqlite``, local: the stores are not committed):
each profiling's models predict every setting of its workload's measured sweep at the target
size (``predict --at``, 2,000 draws, seed 0; the same draws for every setting), and the pick
is the setting with the least median (today), the least 95 % interval high end
(risk-averse), low end, or mean of low, median and high. Judged, like the benchmark, by the
sweep's joules: within 10 % of its best in ≥ 4 of 5 profilings.

    PYTHONPATH=. python experiments/probe_pick_statistic.py [WORKLOAD ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rayjoule.modelling.planning import StageSettings, plan_from_store
from rayjoule.runs.store import Store

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "unseen_predict"
STATS = {"median": lambda e: e.median, "high": lambda e: e.high, "low": lambda e: e.low,
         "mid3": lambda e: (e.low + e.median + e.high) / 3}


def settings(key: str, tasks: int | dict[str, int]) -> StageSettings:
    """A sweep setting as ``--at`` takes it (fixed stages at their one task)."""
    if isinstance(tasks, dict):
        return StageSettings(key, {"tasks": 1}, {s: {"tasks": n} for s, n in tasks.items()})
    return StageSettings(key, {"tasks": tasks})


def ratios(workload: str, bench: dict) -> dict[str, list[float]]:
    """Per statistic, each profiling's pick's sweep joules over the sweep's best."""
    sweep = bench[workload]["sweep"]
    best = min(v["total_j"] for v in sweep.values())
    out: dict[str, list[float]] = {name: [] for name in STATS}
    for k in range(1, 6):
        predicted = json.loads((RESULTS / workload / f"p{k}-predict.json").read_text())
        asked = [(key, settings(key, v["tasks"])) for key, v in sweep.items()]
        with Store.open_read_only(RESULTS / workload / f"p{k}.sqlite") as store:
            report = plan_from_store(store, predicted["workload"], size=predicted["size"],
                                     at=[a for _, a in asked], samples=2000, seed=0)
        joules = {key: p.total_j for (key, _), p in zip(asked, report.predictions, strict=True)}
        for name, stat in STATS.items():
            pick = min(joules, key=lambda key, stat=stat: stat(joules[key]))
            out[name].append(sweep[pick]["total_j"] / best)
    return out


if __name__ == "__main__":
    bench = json.loads((HERE / "results" / "unseen_predict.json").read_text())
    met = dict.fromkeys(STATS, 0)
    for workload in sys.argv[1:] or list(bench):
        found = ratios(workload, bench)
        hits = {name: sum(r <= 1.10 for r in rs) for name, rs in found.items()}
        for name, h in hits.items():
            met[name] += h >= 4
        print(f"{workload:10s} " + " ".join(f"{n} {h}/5" for n, h in hits.items())
              + "   × best: " + "; ".join(f"{n} " + ",".join(f"{r:.3f}" for r in rs)
                                       for n, rs in found.items() if n in ("median", "mid3")),
              flush=True)
    print("workloads at >= 4/5: " + ", ".join(f"{n} {m}" for n, m in met.items()))
