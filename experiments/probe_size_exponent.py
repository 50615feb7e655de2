"""Would a size exponent fix run 3's ``memo`` and ``tally`` misses? A probe, not a model change.

Both workloads' work per task is sub-linear in the task's share of the size (``memo``: a
per-task cache over Zipf keys; ``tally``: partial tables that saturate at K keys, merged in the
driver). The probe refits the single ``map`` stage of each profiling kept by
``bench_unseen_predict.py`` (``experiments/results/unseen_predict/<w>/p<k>.sqlite``, local:
the stores are not committed) with the waves form's per-task work ``(s/n)^β`` and the energy's
work term ``e_work·n·(s/n)^β`` (β = 1 is today's model), β in {1, 0.85, 0.7, 0.55, 0.4}
chosen by leave-one-setting-out error — time's β on exec time, energy's on joules, each
keeping β = 1 unless another beats it by more than one standard error — and prints what each
profiling would then pick at the target size over tasks 1, 2, 3, 4, 6, 8, 16.

    python experiments/probe_size_exponent.py memo tally collatz kmeans fetch stencil
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from rayjoule.modelling import forms, profiles_from_store
from rayjoule.runs.store import Store

RESULTS = Path(__file__).resolve().parent / "results" / "unseen_predict"
BETAS = (1.0, 0.85, 0.7, 0.55, 0.4)
TASKS = np.array([1, 2, 3, 4, 6, 8, 16], float)


def _held_out(fit_predict, keys: list, y: np.ndarray) -> tuple[float, float]:
    errs = []
    for g in sorted(set(keys)):
        out = np.array([k == g for k in keys])
        errs.append(abs(fit_predict(~out, out) - y[out].mean()) / y[out].mean())
    return float(np.mean(errs)), float(np.std(errs, ddof=1) / np.sqrt(len(errs)))


def _one_se(scores: dict[float, tuple[float, float]]) -> float:
    best = min(scores, key=lambda b: scores[b][0])
    return 1.0 if scores[1.0][0] <= scores[best][0] + scores[best][1] else best


def map_profiles(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                         int, float, list]:
    """One kept profiling's ``map`` stage: tasks, sizes, seconds, joules (one row per
    profile), the run's slots, the target size and the (tasks, size) setting of each row."""
    predicted = json.loads((folder.parent / f"{folder.name}-predict.json").read_text())
    with Store(folder.parent / f"{folder.name}.sqlite") as store:
        ps = [p for p in profiles_from_store(store, predicted["workload"]) if p.stage == "map"]
    n, s = np.array([p.tasks for p in ps], float), np.array([p.size for p in ps])
    t, e = np.array([p.wall_s for p in ps]), np.array([p.total_j for p in ps])
    keys = list(zip(n.tolist(), s.tolist(), strict=True))
    return n, s, t, e, ps[0].concurrency, predicted["size"], keys


def pick(folder: Path) -> tuple[float, float, int]:
    """(time β, energy β, the task count the refit picks) for one profiling."""
    n, s, t, e, slots, target, keys = map_profiles(folder)

    def tx(n_, s_, b):
        w = np.ceil(n_ / slots)
        return np.column_stack([w * (s_ / n_) ** b, w, s_, np.ones_like(n_)])

    def ex(t_, n_, s_, b):
        return np.column_stack([t_, n_ * (s_ / n_) ** b, n_])

    def t_fit(rows, b):
        return forms.fit_linear(tx(n[rows], s[rows], b), t[rows], np.zeros(4))

    def t_hat(train, out, b):
        return max(float(t_fit(train, b).predict(tx(n[out][:1], s[out][:1], b))[0]), 0.0)

    bt = _one_se({b: _held_out(lambda tr, o, b=b: t_hat(tr, o, b), keys, t) for b in BETAS})

    def e_hat(train, out, b):
        fit = forms.fit_linear(ex(t[train], n[train], s[train], b), e[train], np.zeros(3))
        return float(fit.predict(ex(np.array([t_hat(train, out, bt)]), n[out][:1],
                                    s[out][:1], b))[0])

    be = _one_se({b: _held_out(lambda tr, o, b=b: e_hat(tr, o, b), keys, e) for b in BETAS})
    every = np.ones(n.size, bool)
    size = np.full(TASKS.size, target)
    times = t_fit(every, bt).predict(tx(TASKS, size, bt))
    joules = forms.fit_linear(ex(t, n, s, be), e, np.zeros(3)).predict(ex(times, TASKS, size, be))
    return bt, be, int(TASKS[np.argmin(joules)])


if __name__ == "__main__":
    for workload in sys.argv[1:] or ["memo", "tally"]:
        found = sorted((RESULTS / workload).glob("p*.sqlite"))
        picks = [pick(f.with_suffix("")) for f in found]
        print(workload, "  ".join(f"β_t {bt:g} β_e {be:g} → {k}" for bt, be, k in picks))
