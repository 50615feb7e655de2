r"""The model forms, and the weighted least squares that fits them with uncertainty.

Time of one stage (Jolteon's performance model, NSDI'24, with input size)::

    t(x, s) = s·(a/x + b·log(x)/x + c/x²) + d            [+ cold start, sampled]

``x`` is the stage's effective parallelism, ``s`` its input size. The work terms
(``a``: work split evenly over the tasks; ``b``: coordination that grows with
log x; ``c``: a shape correction) scale linearly with the size; ``d`` is a fixed
overhead (start-up, driver) that does not. ``a, d >= 0`` (work and overhead cannot
be negative); ``b`` and ``c`` are shape terms of either sign, as in Jolteon's fit.
How CPUs per task ``k`` enter ``x`` depends on the code, so three forms are fitted
and the one with the least held-out error is kept (Jolteon likewise tries ``d`` and
``k·d``):

* ``tasks``: ``x = tasks`` — a task runs one thread; extra CPUs do not speed it;
* ``tasks*num_cpus``: ``x = tasks·k`` — a task uses all its CPUs (multithreaded, or
  fractional CPUs that slow it down);
* ``tasks/num_cpus``: ``x = tasks/k`` — on a saturated fixed pool of cores, CPUs per
  task only reduce how many tasks run at once.

Profiles that never vary ``num_cpus`` cannot tell these apart and use ``tasks``.

**Waves** (tasks beyond the slots). The law above lets time fall with every task added, but
a run admits only ``C`` tasks at once (its concurrency: processes, actors, slots); the
others queue, and the stage runs in ``w = ⌈n/C⌉`` waves of ``n`` tasks. Each wave lasts one
task: its share of the work and its fixed start-up (a worker's import, a table or model
each task builds before working). So where every profile knows ``C`` and CPUs per task do
not vary, one more form competes::

    waves:  t(n, s) = a·s·w/n + h·w + c·s + d,      w = ⌈n/C⌉      (all >= 0)

``a``: parallel work (a wave's share ``s/n``, ``w`` times over); ``h_task_s``: a task's fixed
start-up, paid once per wave; ``c_serial``: work that no task count splits (partitioning,
the reduce); ``d``: fixed overhead. Time now *grows* past ``C`` tasks when start-ups
dominate, is flat in ``n`` past ``C`` when work does (``s·w/n → s/C``), and jumps where
``n`` is not a multiple of ``C`` (a last wave part-empty) — all of which the ``tasks`` form
cannot say. It wins where profiles show those shapes (held-out error). A stage through a
shuffle adds its exchange (below) placed two ways, which compete by held-out error as
``tasks`` and ``waves`` do::

    waves:          t += g·u·w       each reader task opens its u buckets, wave by wave
    waves_objects:  t += g·u·n/C     the u·n objects spread over the C slots, however many
                                     reader tasks there are (writers serialising, a driver
                                     routing each object)

They differ where the reader runs fewer tasks than slots (or a part-empty wave): one
reader task pays ``g·u`` per wave but only ``g·u/C`` of the objects. Why both, not a better
guess: on the unseen benchmark's ``sessions`` (run 2) neither placement was chosen on data,
and the profiles there could not tell them apart (experiments/RESULTS_unseen_predict.md);
the held-out error decides where they can.

**Memory** (MB per task, ``m``) is a setting only where the profiles vary it (serverless
profiles do: flexecutor's settings are ``(cpu, memory, workers)``). In serverless runtimes
memory buys CPU share — AWS Lambda gives one vCPU per 1769 MB, in proportion below and above
— so two more forms let memory enter the time law as a CPU share:

* ``tasks*memory``: ``x = tasks·m/1024`` — each task's speed is proportional to its memory
  (the runtime's CPU share; the scale is absorbed by the parameters);
* ``tasks*cpu_share``: ``x = tasks·min(k, m/1769)`` — the share memory buys, capped by the
  CPUs asked for (``time ∝ 1/min(cpu, memory share)``).

They compete with the CPU forms by held-out error; a form in which memory enters must beat
the best form without it by more than one standard error (memory that buys nothing stays out
of the law). Profiles that never vary memory do not try them.

Energy of one stage::

    E = P_static·t + e_work·s + e_task·x_tasks                (all >= 0)

static power × wall time (what the hosts burn while the stage runs, idle or not),
dynamic energy per unit of work × size, and a per-task overhead (start-up,
serialisation) × tasks. Where the profiles with energy vary memory, one more term prices
memory held while it is held (DRAM draws power per GB, a serverless bill is per GB-second)::

    E += p_memory·tasks·(m/1024)·t                    (p_memory_w_per_gb >= 0)

so more memory costs joules unless it buys time; it is kept only where it beats the fit
without it by more than one standard error of the held-out energy error (a meter that does
not see DRAM, like the ``tdp`` model, leaves it out). Where memory changes neither time nor
energy, the optimiser's ties go to the least memory.

Reserved-but-idle CPUs cost nothing beyond the host's static power, which already prices
every second; CPUs per task reach the energy through the time ``t`` they cause. The fit uses
each profile's measured ``t`` (its exec time plus the cold start it kept apart, the whole run);
a prediction uses the predicted ``t``, draw by draw, so time and energy uncertainty are linked.

**Exchange through a shuffle.** A stage that reads an upstream stage through a bucket
route (a shuffle: each of its tasks reads one bucket from every upstream task) depends on
both stages' task counts: with ``u`` upstream tasks ("fan-in") and ``n`` tasks of its
own, ``u·n`` objects cross the data store, each with a fixed cost (open, (de)serialise,
merge one more partial result). A model in the stage's own ``x`` alone cannot see ``u``
and, worse, blames it on ``x`` when the profiles pair them (as a rotated design does).
Such a stage gets one more term in each form::

    t += g·u·n/x            E += e_exchange·u·n                        (g, e_exchange >= 0)

(its share of the objects per unit of parallelism: ``g·u`` per task when ``x = tasks``).
The optimiser then chooses the two stages' settings jointly.

Both are linear in their parameters and fitted by bounded least squares
(``scipy.optimize.lsq_linear``) on rows weighted by 1/observation, i.e. relative
error: timing noise is roughly proportional to the time (a 30 s stage jitters by
seconds, a 1 s one by tens of ms), and unweighted fits would ignore the fast
settings that the optimiser cares about. Uncertainty is the flat-prior posterior of
linear regression: ``σ² ~ dof·s²/χ²(dof)`` and ``θ | σ² ~ N(θ̂, σ²(XᵀWX)⁻¹)``,
sampled as Jolteon samples its parameters; the noise ``σ`` (relative) is added to
each draw, so intervals cover a run's outcome, not only the mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.optimize import lsq_linear

#: effective parallelism x from (tasks, CPUs per task), by form name
TIME_FORMS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "tasks": lambda tasks, cpus: tasks,
    "tasks*num_cpus": lambda tasks, cpus: tasks * cpus,
    "tasks/num_cpus": lambda tasks, cpus: tasks / cpus,
}
MB_PER_GB = 1024.0
#: memory that buys one vCPU on AWS Lambda ("at 1,769 MB, a function has the equivalent of
#: one vCPU"); the knee of the ``tasks*cpu_share`` form
MB_PER_VCPU = 1769.0
#: forms in which memory (MB per task) enters x as a CPU share: (tasks, CPUs, memory) → x
MEMORY_FORMS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "tasks*memory": lambda tasks, cpus, mem: tasks * mem / MB_PER_GB,
    "tasks*cpu_share": lambda tasks, cpus, mem: tasks * np.minimum(cpus, mem / MB_PER_VCPU),
}
TIME_PARAMS = ("a", "b", "c", "d")
TIME_LOWER = np.array([0.0, -np.inf, -np.inf, 0.0])
#: the form whose tasks run in waves of the run's slots (its concurrency)
WAVES = "waves"
#: the waves form of a shuffle reader whose exchange counts the ``u·n`` objects over the
#: slots (``g·u·n/C``) instead of each task's ``u`` per wave (``g·u·w``); only for a reader
WAVES_OBJECTS = "waves_objects"
#: the forms whose tasks run in waves (both need the slots; they differ only in the exchange)
WAVE_FORMS = (WAVES, WAVES_OBJECTS)
WAVES_PARAMS = ("a", "h_task_s", "c_serial", "d")
ENERGY_PARAMS = ("p_static_w", "e_work_j", "e_task_j")
ENERGY_LOWER = np.zeros(3)
#: the extra parameter of a stage that reads through a shuffle (bucket route)
EXCHANGE_TIME_PARAM = "g"
EXCHANGE_ENERGY_PARAM = "e_exchange_j"
#: the extra energy parameter where the profiles vary memory: watts per GB held
MEMORY_ENERGY_PARAM = "p_memory_w_per_gb"


def time_params(exchange: bool, form: str | None = None) -> tuple[str, ...]:
    base = WAVES_PARAMS if form in WAVE_FORMS else TIME_PARAMS
    return base + ((EXCHANGE_TIME_PARAM,) if exchange else ())


def energy_params(exchange: bool, memory: bool = False) -> tuple[str, ...]:
    return (ENERGY_PARAMS + ((EXCHANGE_ENERGY_PARAM,) if exchange else ())
            + ((MEMORY_ENERGY_PARAM,) if memory else ()))


def time_lower(exchange: bool, form: str | None = None) -> np.ndarray:
    base = np.zeros(len(WAVES_PARAMS)) if form in WAVE_FORMS else TIME_LOWER
    return np.append(base, 0.0) if exchange else base


def energy_lower(exchange: bool, memory: bool = False) -> np.ndarray:
    return np.zeros(len(energy_params(exchange, memory)))


def parallelism(form: str, tasks: np.ndarray, cpus: np.ndarray,
                memory: np.ndarray | None = None) -> np.ndarray:
    """Effective parallelism ``x`` under ``form`` (memory, MB per task, for a memory form).

    >>> float(parallelism("tasks*cpu_share", np.array(4.0), np.array(2.0), np.array(1769.0)))
    4.0
    """
    if form in WAVE_FORMS:
        return np.asarray(tasks, float)
    if form in MEMORY_FORMS:
        if memory is None:
            raise ValueError(f"the time form {form} needs memory")
        return np.asarray(MEMORY_FORMS[form](np.asarray(tasks, float), np.asarray(cpus, float),
                                             np.asarray(memory, float)))
    return np.asarray(TIME_FORMS[form](np.asarray(tasks, float), np.asarray(cpus, float)))
#: Tikhonov weight on the unit-norm-scaled parameters (see :func:`fit_linear`)
RIDGE = 1e-8


def waves(tasks: np.ndarray, slots: int) -> np.ndarray:
    """``⌈tasks/slots⌉``: how many rounds the tasks run in, ``slots`` at a time.

    >>> waves(np.array([1, 2, 3, 8]), 2).tolist()
    [1.0, 1.0, 2.0, 4.0]
    """
    return np.ceil(np.asarray(tasks, float) / slots)


def time_features(form: str, tasks: np.ndarray, cpus: np.ndarray, size: np.ndarray,
                  fan_in: np.ndarray | None = None, memory: np.ndarray | None = None,
                  slots: int | None = None) -> np.ndarray:
    """Rows ``[s/x, s·log(x)/x, s/x², 1]`` of the time model, ``+ [u·tasks/x]`` with a fan-in;
    under ``waves`` (which needs ``slots``), ``[s·w/n, w, s, 1]`` ``+ [u·w]``, under
    ``waves_objects`` the same ``+ [u·n/C]``."""
    tasks_a = np.asarray(tasks, float)
    if form in WAVE_FORMS:
        if slots is None:
            raise ValueError(f"the time form {form} needs the slots (concurrency)")
        w = waves(tasks_a, slots)
        s = np.broadcast_to(np.asarray(size, float), w.shape)
        cols = [s * w / tasks_a, w, s, np.ones_like(w)]
        if fan_in is not None:
            u = np.broadcast_to(np.asarray(fan_in, float), w.shape)
            cols.append(u * w if form == WAVES else u * tasks_a / slots)
        return np.column_stack(cols)
    x = parallelism(form, tasks_a, np.asarray(cpus, float), memory)
    s = np.broadcast_to(np.asarray(size, float), x.shape)
    cols = [s / x, s * np.log(x) / x, s / x**2, np.ones_like(x)]
    if fan_in is not None:
        cols.append(np.broadcast_to(np.asarray(fan_in, float), x.shape) * tasks_a / x)
    return np.column_stack(cols)


def energy_features(wall_s: np.ndarray, size: np.ndarray, tasks: np.ndarray,
                    fan_in: np.ndarray | None = None, memory: np.ndarray | None = None
                    ) -> np.ndarray:
    """Rows ``[t, s, tasks]`` of the energy model, ``+ [u·tasks]`` with a fan-in, ``+
    [tasks·GB·t]`` with memory (GB-seconds held)."""
    t = np.asarray(wall_s, float)
    n = np.broadcast_to(np.asarray(tasks, float), t.shape)
    cols = [t, np.broadcast_to(np.asarray(size, float), t.shape), n]
    if fan_in is not None:
        cols.append(np.broadcast_to(np.asarray(fan_in, float), t.shape) * n)
    if memory is not None:
        cols.append(n * np.broadcast_to(np.asarray(memory, float), t.shape) / MB_PER_GB * t)
    return np.column_stack(cols)


@dataclass(frozen=True)
class LinearFit:
    """θ̂ of ``y ≈ X·θ`` (relative error), with what its posterior needs.

    ``cov_unit`` is (XᵀWX)⁻¹ in the units of θ; the covariance is ``s2 · cov_unit``.
    ``s2`` is the relative residual variance, NaN when there is no degree of freedom.
    """

    coef: np.ndarray
    cov_unit: np.ndarray
    s2: float
    dof: int
    rank: int

    def intervals(self, level: float = 0.95) -> np.ndarray:
        """(p, 2) two-sided Student-t intervals of the parameters (NaN without dof)."""
        if self.dof < 1:
            return np.full((self.coef.size, 2), np.nan)
        half = stats.t.ppf(0.5 + level / 2, self.dof) * np.sqrt(
            self.s2 * np.clip(np.diag(self.cov_unit), 0, None))
        return np.column_stack([self.coef - half, self.coef + half])

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` posterior draws: parameters (n, p) and the relative noise σ (n,)."""
        if self.dof < 1 or not np.isfinite(self.s2):
            return np.tile(self.coef, (n, 1)), np.zeros(n)
        sigma2 = self.dof * self.s2 / rng.chisquare(self.dof, n)
        vals, vecs = np.linalg.eigh((self.cov_unit + self.cov_unit.T) / 2)
        root = vecs * np.sqrt(np.clip(vals, 0, None))
        z = rng.standard_normal((n, self.coef.size))
        return self.coef + np.sqrt(sigma2)[:, None] * (z @ root.T), np.sqrt(sigma2)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(features) @ self.coef


def fit_linear(features: np.ndarray, y: np.ndarray, lower: np.ndarray) -> LinearFit:
    """Bounded least squares of relative error, columns rescaled for conditioning.

    >>> x = np.array([1.0, 2, 4, 8])
    >>> fit = fit_linear(np.column_stack([1 / x, np.ones(4)]), 6 / x + 1, np.zeros(2))
    >>> np.round(fit.coef, 6).tolist(), fit.dof
    ([6.0, 1.0], 2)
    """
    y = np.asarray(y, float)
    a = np.asarray(features, float) / y[:, None]
    scale = np.linalg.norm(a, axis=0)
    scale[scale == 0] = 1.0
    a_s = a / scale
    # a whisper of ridge (on unit-norm columns) makes the solution unique where the rows
    # cannot pin every parameter — a held-out fit that lost a setting, say. Without it the
    # solver returns any point of the flat valley, whose predictions a few settings away can
    # be off by orders of magnitude (and flip with rounding); with it, the directions the
    # data does not see stay at zero. Full-rank fits move by far less than their noise.
    k = a_s.shape[1]
    aug = np.vstack([a_s, np.sqrt(RIDGE) * np.eye(k)])
    res = lsq_linear(aug, np.concatenate([np.ones_like(y), np.zeros(k)]),
                     bounds=(lower, np.full(lower.shape, np.inf)), method="bvls")
    resid = 1.0 - a_s @ res.x
    dof = y.size - a.shape[1]
    s2 = float(resid @ resid / dof) if dof > 0 else float("nan")
    cov_unit = np.linalg.pinv(a_s.T @ a_s) / np.outer(scale, scale)
    return LinearFit(res.x / scale, cov_unit, s2, dof, int(np.linalg.matrix_rank(a_s)))
