"""The profiling design: which runs the energy models need, as a pure function (no I/O).

Why a design rather than "a few runs": the per-stage models (:mod:`rayjoule.modelling`)
fit four time parameters and three energy parameters, so each stage needs at least five
distinct settings spread over at least four task counts, and two or more input sizes to
tell work that grows with the input from fixed and per-task costs. :func:`design` builds
a small set of runs that gives every stage that; running it (stored with ``profile=True``,
so :func:`rayjoule.modelling.profiles_from_store` finds it) is
:mod:`rayjoule.modelling.profiling_runs`.

What each size has to tell the models decides what runs there. The time law
``t = s·(a/x + b·log x/x + c/x²) + d`` has, at one size ``s``, four independent functions
of the parallelism ``x``: one size with four task counts already fixes its shape in ``x``
(and the CPU points decide how CPUs enter ``x``). A second size only has to say how much of
each time grows with the size and how much is the fixed ``d`` — and with the shape known,
each run there measures exactly that at its ``x``. So the whole grid runs at the smallest
size only, and each larger size gets two *anchor* runs (default ⅛ and ½ of the target size,
:data:`DEFAULT_FRACTIONS`):

* **grid, smallest size** — task counts: powers of two from 1 to 4 × concurrency (at most
  five, even in log scale): {1, 2, 4, 8} on two CPUs. Pipelines: a rotated (Latin-square)
  design over the stages whose parallelism can vary — run ``i`` gives stage ``k`` the task
  count ``counts[(i + k) % n]``, a shuffle reader half a turn from its upstream
  (:func:`rotation`) — so every stage sees every count in ``n`` runs instead of one sweep
  per stage, and no two stages' settings move together. Stages capped below four
  tasks (``max_tasks``) stay at their default and are reported as fixed. Ray only (the one
  framework where CPUs per task change scheduling): two more runs, 2 × concurrency tasks
  at 0.5 CPUs and concurrency tasks at 2 CPUs, so the model can choose how CPUs enter the
  effective parallelism. Each runs at its :func:`paired_concurrency`: the same CPU budget
  (concurrency × 1 CPU) packed with tasks of that size, so 0.5-CPU tasks run twice as many
  at once (at the base concurrency Ray's placement group would cap them at ``concurrency``
  tasks at once, and a 0.5-CPU run would measure nothing a 1-CPU run does not). Every grid
  run is repeated (default twice): the scatter is the models' noise.
* **anchors, every larger size** — the smallest and the largest task count at 1 CPU, the
  two ends of the profiled parallelism, where the fixed part's share of the time is least
  and most, so the size scaling is seen across the whole range (on the synthetic law of
  the tests, concurrency tasks instead of 1 as the lower end did as well); in a pipeline the
  stages take the two ends in turn (stage ``k`` of anchor ``i`` gets end ``(i + k) % 2``),
  so here too no two stages move together. One repeat each by default
  (:data:`DEFAULT_ANCHOR_REPEATS`): two anchors are already two checks of one number per
  stage, and the noise comes from the grid. Leaving one anchor out still leaves the other,
  so the held-out error includes predicting a larger size from the smaller one.

Every stage gets ``n + 2`` distinct settings (≥ 6; Ray ``n + 4``), over ``n`` task counts
and every size. On two CPUs: 4 × 2 + 2 = 10 runs natively, 6 × 2 + 2 = 14 on Ray — in
target-size equivalents ⅛ × 8 + ½ × 2 = 2 (Ray 2.5), against 5 (7.5) when the whole grid ran
at both sizes, which cost 31-59 % of a 20-trial live tune (``experiments/
bench_model_tuner.py``). What is given up: with the larger size seen at two settings instead
of all, a prediction at the target size is less precise between the anchors (synthetic law,
2-3 % noise: median error ~4-5 % against ~2 % for the whole grid at both sizes,
``tests/rayjoule/modelling/test_model_design.py``). What the anchors buy: the same number of
runs spent on a fifth task count at the smallest size instead has a ~4 × larger median error
at the target size, and on the benchmark's live ``pi`` profiles (24 runs of the old design) the
smallest size's runs alone pick 4 tasks × 2 CPUs at the target size (1.5 × the sweep's
best), the grid plus the two anchors 8 × 1 CPU (1.005 ×), as all 24 do. The CPU points were
once kept at every size after a design with them at the smallest size only picked 0.5 CPUs
per task for ``pi`` at the full size (1.6-2 × the best); that was before they ran at their
paired concurrency, when a 0.5-CPU profile measured a 1-CPU schedule.

Nothing here runs or prints: :mod:`.profiling_runs` runs a design, the command
(:mod:`rayjoule.cli.profile`) renders it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rayjoule.core.config import RunConfig
from rayjoule.core.errors import ConfigError
from rayjoule.runs.session import resolve_pipeline

DEFAULT_FRACTIONS = (0.125, 0.5)
DEFAULT_REPEATS = 2
#: runs of each anchor (the larger sizes' two settings); the grid's repeats give the noise
DEFAULT_ANCHOR_REPEATS = 1
MIN_TASK_COUNTS = 4
MAX_TASK_COUNTS = 5
RAY_CPU_POINTS = (0.5, 2.0)


@dataclass(frozen=True)
class ProfilePoint:
    """One designed run: an input size and the settings of the varied stages."""

    size: int | float
    tasks: dict[str, int]
    num_cpus: dict[str, float] = field(default_factory=dict)
    #: None: the base's concurrency
    concurrency: int | None = None
    #: "grid" (every setting, smallest size) or "anchor" (the ends of the task counts at a
    #: larger size, which pin how time and energy grow with the size)
    role: str = "grid"
    #: runs of this point; None: the design's ``repeats``
    repeats: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "tasks": dict(self.tasks), "num_cpus": dict(self.num_cpus),
                "concurrency": self.concurrency, "role": self.role, "repeats": self.repeats}


@dataclass(frozen=True)
class ProfileDesign:
    """The runs to profile a workload with; ``configs(base)`` turns them into RunConfigs."""

    workload: str
    framework: str
    sizes: tuple[int | float, ...]
    points: tuple[ProfilePoint, ...]
    repeats: int
    varied: tuple[str, ...]
    fixed: dict[str, str]
    stages: tuple[str, ...]
    #: varied stages that read other varied stages through a shuffle → those stages
    reads: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def single_stage(self) -> bool:
        return len(self.stages) == 1

    @property
    def n_runs(self) -> int:
        return sum(self.repeats_of(p) for p in self.points)

    def repeats_of(self, point: ProfilePoint) -> int:
        return self.repeats if point.repeats is None else point.repeats

    @property
    def anchor_repeats(self) -> int | None:
        """Runs of each anchor (None without anchors)."""
        return next((self.repeats_of(p) for p in self.points if p.role == "anchor"), None)

    def n_settings_by_stage(self) -> dict[str, int]:
        """Distinct (tasks, CPUs, size[, fan-in]) settings each varied stage gets (the fit's
        need; a shuffle reader's fan-in is its upstream stages' task count)."""
        return {s: len({(p.tasks[s], p.num_cpus.get(s, 1.0), p.size,
                         sum(p.tasks[u] for u in self.reads.get(s, ()))) for p in self.points})
                for s in self.varied}

    def config(self, base: RunConfig, point: ProfilePoint) -> RunConfig:
        """The RunConfig of one point: the base with its size, tasks and CPUs, tagged."""
        if self.single_stage:
            stage = self.varied[0]
            tasks: Any = point.tasks[stage]
            cpus: Any = point.num_cpus.get(stage, base.num_cpus)
        else:
            tasks = dict(point.tasks)
            cpus = _merge_cpus(base.num_cpus, point.num_cpus, self.stages)
        conc = base.concurrency if point.concurrency is None else point.concurrency
        return dataclasses.replace(base, size=point.size, tasks=tasks, num_cpus=cpus,
                                   concurrency=conc, repeats=self.repeats_of(point),
                                   profile=True)

    def configs(self, base: RunConfig) -> list[RunConfig]:
        return [self.config(base, p) for p in self.points]

    def to_dict(self) -> dict[str, Any]:
        return {"workload": self.workload, "framework": self.framework,
                "sizes": list(self.sizes), "repeats": self.repeats,
                "anchor_repeats": self.anchor_repeats, "runs": self.n_runs,
                "stages": list(self.stages),
                "varied_stages": list(self.varied),
                "fixed_stages": dict(self.fixed),
                "shuffle_reads": {s: list(u) for s, u in self.reads.items()},
                "points": [p.to_dict() for p in self.points]}


def task_counts(concurrency: int, cap: int | None = None) -> list[int]:
    """Powers of two from 1 to 4 × concurrency (capped), at most five, even in log scale.

    >>> task_counts(2), task_counts(16), task_counts(16, cap=4)
    ([1, 2, 4, 8], [1, 4, 8, 16, 64], [1, 2, 4])
    """
    top = 4 * max(1, concurrency) if cap is None else min(4 * max(1, concurrency), cap)
    counts = [2**i for i in range(32) if 2**i <= top]
    if len(counts) > MAX_TASK_COUNTS:
        step = (len(counts) - 1) / (MAX_TASK_COUNTS - 1)
        counts = sorted({counts[round(i * step)] for i in range(MAX_TASK_COUNTS)})
    return counts


def paired_concurrency(budget: int, settings: Mapping[str, tuple[int, float]]) -> int:
    """The concurrency that packs a CPU budget with tasks of the settings' CPU sizes.

    ``budget`` is the concurrency of 1-CPU tasks (the CPUs the run may use); ``settings``
    maps each stage to (tasks, CPUs per task). A stage of ``tasks`` at ``k`` CPUs fills the
    budget with ``min(tasks, budget / k)`` tasks at once, so fractional CPUs raise the
    concurrency and whole ones never lower it below the budget (Ray's CPU accounting caps
    those already). On Ray, concurrency below that leaves the fractional request moot: the
    placement group holds the stage at ``concurrency`` tasks at once. The largest over the
    stages (one concurrency serves the whole run).

    >>> paired_concurrency(2, {"map": (8, 0.5)}), paired_concurrency(2, {"map": (3, 0.5)})
    (4, 3)
    >>> paired_concurrency(2, {"map": (8, 1.0)}), paired_concurrency(2, {"map": (4, 2.0)})
    (2, 2)
    """
    budget = max(1, int(budget))
    return max([budget] + [min(int(t), int(budget / k + 1e-9)) for t, k in settings.values()])


def default_sizes(target: int | float, size_type: type = int,
                  fractions: Sequence[float] = DEFAULT_FRACTIONS) -> list[int | float]:
    """Fractions of the target size, in the workload's size type (⅛ and ½ by default).

    >>> default_sizes(500_000_000)
    [62500000, 250000000]
    """
    return [size_type(round(target * f)) if size_type is int else size_type(target * f)
            for f in fractions]


def design(base: RunConfig, sizes: Sequence[Any] | None = None,
           repeats: int = DEFAULT_REPEATS, tasks: Sequence[int] | None = None,
           workload: Any | None = None,
           anchor_repeats: int = DEFAULT_ANCHOR_REPEATS) -> ProfileDesign:
    """The profiling design for ``base`` (validated here, with every run's config).

    The grid (every task count, and on Ray the CPU points) at the smallest size, ``repeats``
    runs each; two anchors (smallest and largest task count) at every larger size,
    ``anchor_repeats`` runs each. ``sizes`` default to :func:`default_sizes` of the base's
    size; ``tasks`` to :func:`task_counts` of its concurrency. Raises ConfigError (before
    any work) when the design could not support a model: fewer than two sizes, or fewer
    than four task counts for every stage. Otherwise every varied stage gets at least
    four task counts at the smallest size and two settings at each larger one, ≥ 6
    distinct settings (the time model needs 5, the energy model 4).
    """
    base = base.validated()
    pipeline = resolve_pipeline(base, workload)
    for name, value in (("--repeats", repeats), ("--anchor-repeats", anchor_repeats)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    if sizes is None:
        sizes = default_sizes(base.size, pipeline.size_type)
    sizes = _check_sizes(base, sizes, workload)
    counts = sorted(set(tasks)) if tasks else task_counts(int(base.concurrency))
    if any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in counts):
        raise ConfigError(f"task counts must be integers >= 1, got {list(tasks or [])}")
    if len(counts) < MIN_TASK_COUNTS:
        raise ConfigError(f"the design needs at least {MIN_TASK_COUNTS} task counts for the "
                          f"time model, got {counts}")
    varied, fixed, per_stage = [], {}, {}
    for stage in pipeline.order():
        mine = [t for t in counts if stage.max_tasks is None or t <= stage.max_tasks]
        if len(mine) < MIN_TASK_COUNTS:
            fixed[stage.name] = (f"max_tasks {stage.max_tasks}: fewer than {MIN_TASK_COUNTS} "
                                 "task counts, runs at its default and is not modelled")
            continue
        varied.append(stage.name)
        per_stage[stage.name] = mine
    if not varied:
        raise ConfigError(f"no stage of {base.workload!r} can run at {MIN_TASK_COUNTS} or more "
                          "task counts; there is nothing to model")
    smallest, larger = sizes[0], sizes[1:]
    n = max(len(c) for c in per_stage.values())
    reads = {stage.name: ups for stage in pipeline.order()
             if stage.name in varied
             and (ups := tuple(e.stage for e in stage.inputs
                               if e.route == "bucket" and e.stage in varied))}
    # a shuffle reader's cost depends on its upstream's task count too (the fan-in): on
    # the grid the rotation pairs each of its counts with one upstream count, and the
    # anchors break that pairing (the reader's last count after the upstream's first),
    # which identifies the model's exchange term. The reader's rotation is half a turn
    # from its upstream's (:func:`rotation`), not one step: one step pairs the reader's
    # single task with the upstream's most tasks on the grid, as the anchor does again,
    # and those rows are the only ones where the waves form can tell a reader's parallel
    # work from its serial work (fewer tasks than slots). A second, reversed rotation
    # would vary the pairing on the grid too, but run once each, every first-stage profile
    # would be a cold one (the run that starts the executor's workers, which at the
    # smallest size hides most of the parallel speed-up: docs/modelling.md), and run
    # twice each it costs 18 runs instead of 10 natively.
    offsets = rotation(varied, reads, n)
    points = [ProfilePoint(smallest, {s: per_stage[s][(i + offsets[s]) % len(per_stage[s])]
                                      for s in varied})
              for i in range(n)]
    if base.framework == "ray":
        points.extend(_cpu_points(base, smallest, per_stage, varied))
    for size in larger:
        points.extend(_anchors(size, per_stage, varied, anchor_repeats))
    d = ProfileDesign(base.workload, base.framework, tuple(sizes), tuple(points), repeats,
                      tuple(varied), fixed, tuple(s.name for s in pipeline.order()), reads)
    for config in d.configs(base):  # every run is checked before the first one starts
        config.validated()
    return d


def rotation(varied: Sequence[str], reads: Mapping[str, tuple[str, ...]], n: int
             ) -> dict[str, int]:
    """Each varied stage's offset in the grid's rotation (run ``i`` gives it the count
    ``counts[(i + offset) % n]``): stage ``k``'s is ``k``, a shuffle reader's half a turn
    from its first upstream's, each taken once while free offsets remain.

    Why half a turn (issue 24, ``sessions``): with 2 slots and counts 1, 2, 4, 8, one step
    pairs the reader's 1 task with the upstream's 8 on the grid, as the anchor at the larger
    size does again; in the waves form only rows with fewer tasks than slots tell parallel
    work from serial work, so both such rows carried the largest fan-in, and the reader's
    work, serial work and exchange came out confounded (variance inflation of the parallel
    work's parameter 172 against 19 with half a turn, docs/modelling.md). Half a turn
    pairs its 1 task with the upstream's 4, the anchor with 8.

    >>> rotation(["events", "sessionize"], {"sessionize": ("events",)}, 4)
    {'events': 0, 'sessionize': 2}
    >>> rotation(["a", "b", "c"], {}, 4)
    {'a': 0, 'b': 1, 'c': 2}
    """
    out: dict[str, int] = {}
    for k, stage in enumerate(varied):
        ups = [u for u in reads.get(stage, ()) if u in out]
        want = (out[ups[0]] + n // 2) % n if ups else k % n
        free = [o for o in range(n) if o not in out.values()]
        if want not in free and free:
            want = min(free, key=lambda o: (o - want) % n)
        out[stage] = want
    return out


def _anchors(size: Any, per_stage: dict[str, list[int]], varied: list[str],
             repeats: int) -> list[ProfilePoint]:
    """The two ends of each stage's task counts at ``size`` (1 CPU), stages alternating."""
    return [ProfilePoint(size, {s: (per_stage[s][0], per_stage[s][-1])[(i + k) % 2]
                                for k, s in enumerate(varied)},
                         role="anchor", repeats=repeats)
            for i in range(2)]


def _cpu_points(base: RunConfig, size: Any, per_stage: dict[str, list[int]],
                varied: list[str]) -> list[ProfilePoint]:
    """Ray: one run per CPU count of :data:`RAY_CPU_POINTS` that the machine can host."""
    conc = int(base.concurrency)
    out = []
    for j, cpus in enumerate(c for c in RAY_CPU_POINTS if c <= max(conc, 1)):
        tasks = {}
        for k, s in enumerate(varied):
            counts = per_stage[s]
            want = 2 * conc if cpus < 1 else conc
            near = min(counts, key=lambda t, w=want: abs(math.log(t) - math.log(w)))
            tasks[s] = counts[(counts.index(near) + j + k) % len(counts)] if k else near
        conc_k = paired_concurrency(conc, {s: (t, cpus) for s, t in tasks.items()})
        out.append(ProfilePoint(size, tasks, {s: cpus for s in varied},
                                None if conc_k == conc else conc_k))
    return out


def _check_sizes(base: RunConfig, sizes: Sequence[Any], workload: Any) -> tuple[Any, ...]:
    checked = []
    for size in sizes:
        checked.append(dataclasses.replace(base, size=size).validated().size)
    if len(set(checked)) < 2:
        raise ConfigError(f"profiling needs at least two distinct input sizes, got "
                          f"{', '.join(map(str, checked)) or 'none'}; give --sizes")
    return tuple(sorted(set(checked)))


def _merge_cpus(base: Any, point: Mapping[str, float], stages: Sequence[str]) -> Any:
    """The base's CPUs per task with the point's stages overriding (stage → CPUs)."""
    if not point:
        return base
    if isinstance(base, Mapping):
        return {**base, **point}
    return {s: float(point.get(s, base)) for s in stages}
