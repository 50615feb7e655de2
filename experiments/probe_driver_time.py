"""Would modelling the run's time outside its stage fix ``tally``? A probe, not a model change.

A single-stage workload's ``reduce`` runs in the driver after the ``map`` stage: its joules
are in the stage's (the run's) energy but its time is in no stage's. ``tally``'s profiles
show it large — 0.3-1.7 s outside a 0.06-0.38 s stage — so the energy law's ``P_static·t``
sees the wrong ``t``. The probe refits the ``map`` stage of each profiling kept by
``bench_unseen_predict.py`` (``experiments/results/unseen_predict/<w>/p<k>.sqlite``, local:
the stores are not committed) two ways and prints the task count each picks at the target
size over tasks 1, 2, 3, 4, 6, 8, 16, against the sweep's best:

* ``today``: energy ``P·t_stage + e_work·s + e_task·n``, predicted at the stage time law;
* ``run_t``: the same law fitted at the run's whole time, predicted at the stage time law +
  the outside time's own law (:class:`rayjoule.modelling.fixed.FixedStage`'s, ``intercept +
  slope·size [+ per_task·n]``, the task term kept by the same one-SE held-out rule; a ``u``
  after the pick marks a profiling where it was kept).

    python experiments/probe_driver_time.py tally memo collatz kmeans fetch stencil bloom pricing
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from rayjoule.modelling import fit_stage, forms, profiles_from_store
from rayjoule.modelling.fixed import FixedStage
from rayjoule.modelling.profiles import Profile
from rayjoule.runs.store import Store

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "unseen_predict"
TASKS = np.array([1, 2, 3, 4, 6, 8, 16], float)


def observed(store: Store, workload: str) -> np.ndarray:
    """Rows (tasks, size, stage s, run s, joules), one per repeat, as the profiles read them."""
    records = [r for r in store.records(workload=workload, status="ok")
               if r.config.get("profile")]
    combined = {r.run_id for r in records if r.result and r.result.get("repeats")}
    rows = []
    for r in records:
        if r.parent_id in combined or r.result is None:
            continue
        for o in r.result.get("repeats") or [r.result]:
            [stage] = o["stages"]
            rows.append((r.config["tasks"], r.config["size"], stage["wall_s"], o["wall_s"],
                         stage["energy"]["total_j"]))
    return np.array(rows, float)


def outside_law(n: np.ndarray, size: np.ndarray, outside: np.ndarray) -> FixedStage:
    """The outside time as a fixed stage after ``map`` whose upstream is the map's tasks."""
    return FixedStage.fit([Profile("probe", "driver", tasks=1, num_cpus=1.0, memory_mb=None,
                                   size=float(s), wall_s=max(float(t), 1e-6), total_j=None,
                                   upstream_tasks=int(k), upstream_stages=("map",))
                           for k, s, t in zip(n, size, outside, strict=True)])


def picks(workload: str, k: int) -> tuple[int, int, bool]:
    """(today's pick, the pick with the run's time, whether the outside law grows with n)."""
    predicted = json.loads((RESULTS / workload / f"p{k}-predict.json").read_text())
    name, target = predicted["workload"], predicted["size"]
    with Store(RESULTS / workload / f"p{k}.sqlite") as store:
        ps = [p for p in profiles_from_store(store, name) if p.stage == "map"]
        n, size, t_stage, t_run, joules = observed(store, name).T
    model = fit_stage(ps)
    t_hat = model.time_fit.predict(forms.time_features(
        model.time_form, TASKS, np.ones_like(TASKS), target, None, None, model.slots))
    law = outside_law(n, size, t_run - t_stage)
    out_hat = np.array([law.estimate(target, int(m)).exec_s.median for m in TASKS])
    chosen = []
    for t_fit, t_at in ((t_stage, t_hat), (t_run, t_hat + out_hat)):
        fit = forms.fit_linear(np.column_stack([t_fit, size, n]), joules, np.zeros(3))
        j = fit.predict(np.column_stack([t_at, np.full(TASKS.size, target), TASKS]))
        chosen.append(int(TASKS[np.argmin(j)]))
    return chosen[0], chosen[1], law.grows_with_upstream


if __name__ == "__main__":
    bench = json.loads((HERE / "results" / "unseen_predict.json").read_text())
    for workload in sys.argv[1:] or ["tally"]:
        sweep = {int(key.split("=")[1]): v["total_j"] for key, v in
                 bench[workload]["sweep"].items()}
        best = min(sweep.values())
        rows = [picks(workload, k) for k in range(1, 6)]
        within = [sum(sweep[r[i]] <= 1.10 * best for r in rows) for i in (0, 1)]
        print(f"{workload}: sweep best {min(sweep, key=sweep.get)}; picks today→run_t "
              + " ".join(f"{a}→{b}{'u' if g else ''}" for a, b, g in rows)
              + f"; within 10 %: today {within[0]}/5, run_t {within[1]}/5")
