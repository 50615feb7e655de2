"""Would a per-task cost that grows with the size fix ``memo`` and ``tally``? A probe.

Both duplicate work in every task (``memo``'s cache, ``tally``'s partial table) whose cost
grows with the input, so one more term in each law — time: ``h_s·s·w`` (each wave's task
start-up grows with the size), energy: ``e_task_size·n·s`` — competes with today's laws by
leave-one-setting-out error (one-SE rule, as the forms do), refitted on the stores
``bench_unseen_predict.py`` kept (``experiments/results/unseen_predict/<w>/p<k>.sqlite``).
``--force`` uses both terms everywhere. Prints, per profiling, which terms were kept (t/e:
0 or 1) and the task count picked at the target size, and how many picks are within 10 %
of the sweep's best.

    python experiments/probe_task_size_term.py [--force] memo tally collatz kmeans fetch \
        stencil bloom pricing
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from probe_size_exponent import RESULTS, TASKS, _held_out, map_profiles

from rayjoule.modelling import forms

HERE = Path(__file__).resolve().parent


def _keep(scores: dict[int, tuple[float, float]], force: bool) -> int:
    """1 (the extra term) only where it beats the plain law by more than one standard error."""
    if force:
        return 1
    best = min(scores, key=lambda x: scores[x][0])
    return 0 if scores[0][0] <= scores[best][0] + scores[best][1] else best


def pick(workload: str, k: int, force: bool) -> tuple[int, int, int]:
    n, s, t, e, slots, target, keys = map_profiles(RESULTS / workload / f"p{k}")

    def tx(n_, s_, extra):
        w = np.ceil(n_ / slots)
        return np.column_stack([s_ * w / n_, w, s_, np.ones_like(n_)] + ([s_ * w] if extra else []))

    def t_fit(rows, extra):
        return forms.fit_linear(tx(n[rows], s[rows], extra), t[rows], np.zeros(4 + extra))

    def t_hat(train, out, extra):
        return max(float(t_fit(train, extra).predict(tx(n[out][:1], s[out][:1], extra))[0]), 0)

    xt = _keep({x: _held_out(lambda tr, o, x=x: t_hat(tr, o, x), keys, t) for x in (0, 1)}, force)

    def ex(t_, n_, s_, extra):
        return np.column_stack([t_, s_, n_] + ([n_ * s_] if extra else []))

    def e_hat(train, out, extra):
        fit = forms.fit_linear(ex(t[train], n[train], s[train], extra), e[train],
                               np.zeros(3 + extra))
        return float(fit.predict(ex(np.array([t_hat(train, out, xt)]), n[out][:1],
                                    s[out][:1], extra))[0])

    xe = _keep({x: _held_out(lambda tr, o, x=x: e_hat(tr, o, x), keys, e) for x in (0, 1)}, force)
    size = np.full(TASKS.size, target)
    times = t_fit(np.ones(n.size, bool), xt).predict(tx(TASKS, size, xt))
    joules = forms.fit_linear(ex(t, n, s, xe), e, np.zeros(3 + xe)).predict(
        ex(times, TASKS, size, xe))
    return xt, xe, int(TASKS[np.argmin(joules)])


if __name__ == "__main__":
    force = "--force" in sys.argv
    bench = json.loads((HERE / "results" / "unseen_predict.json").read_text())
    for workload in [a for a in sys.argv[1:] if a != "--force"] or ["memo", "tally"]:
        sweep = {int(key.split("=")[1]): v["total_j"] for key, v in
                 bench[workload]["sweep"].items()}
        rows = [pick(workload, k, force) for k in range(1, 6)]
        within = sum(sweep[c] <= 1.10 * min(sweep.values()) for _, _, c in rows)
        print(f"{workload}: sweep best {min(sweep, key=sweep.get)}; "
              + " ".join(f"t{a}e{b}→{c}" for a, b, c in rows) + f"; within 10 %: {within}/5")
