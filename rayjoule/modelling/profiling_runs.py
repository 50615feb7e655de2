"""Running a profiling design: every point stored as a tagged profiling run, and imports.

Why apart from :mod:`.profiling_design`: the design is a pure function of the config;
running it needs the run session and the store (the floor below), and the command and
the model-seeded tuner both run designs while only reading designs elsewhere. A design is
checked whole before its first run (:func:`check_design_feasible`): the run's own check is
per run, and would otherwise refuse a later point after the first were stored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rayjoule.core.config import RunConfig
from rayjoule.core.result import RunResult
from rayjoule.modelling.profiles import Profile
from rayjoule.modelling.profiling_design import ProfileDesign, ProfilePoint
from rayjoule.runs.session import (
    check_feasible,
    check_runs_hours,
    estimated_run_s,
    new_run_id,
    run,
)
from rayjoule.runs.store import ImportedRun, Store


@dataclass
class ProfilingOutcome:
    """What a design cost: the stored results (one per point), and every repeat's joules."""

    results: list[RunResult] = field(default_factory=list)

    @property
    def repeats(self) -> list[RunResult]:
        return [r for res in self.results for r in (res.repeats or [res])]

    @property
    def total_j(self) -> float:
        return math.fsum(r.energy.total_j for r in self.repeats)

    @property
    def wall_s(self) -> float:
        return math.fsum(r.wall_s for r in self.repeats)

    @property
    def meter(self) -> dict[str, str]:
        """Meter name and kind over every run ("a+b" where runs differ)."""
        names = sorted({r.meter.name for r in self.repeats})
        kinds = sorted({r.meter.kind for r in self.repeats})
        return {"name": "+".join(names) or "none", "kind": "+".join(kinds) or "none"}

    def to_dict(self) -> dict[str, Any]:
        return {"runs": [r.run_id for r in self.results], "total_j": self.total_j,
                "wall_s": self.wall_s, "meter": self.meter}


def check_design_feasible(d: ProfileDesign, base: RunConfig) -> None:
    """Refuse, before the first run, a design one of whose runs :func:`check_feasible`
    would refuse midway (too many tasks' records, a run over ``--max-hours``), or whose
    runs together are estimated to take longer than ``--max-hours`` (``--repeats 10**9``).

    Without this a design stores its first runs and then fails at a later, larger point:
    bad input found after work (the run's own check is per run)."""
    total_s = 0.0
    for point in d.points:
        config = d.config(base, point)
        check_feasible(config, dict(point.tasks))
        total_s += d.repeats_of(point) * estimated_run_s(config, point.tasks)
    check_runs_hours(total_s, base.max_hours, f"the profiling design's {d.n_runs} runs",
                     "use fewer --repeats/--anchor-repeats or smaller --sizes")


def run_design(d: ProfileDesign, base: RunConfig, db: Store,
               on_run: Callable[[int, ProfilePoint, RunResult], None] | None = None,
               outcome: ProfilingOutcome | None = None,
               workload: Any | None = None) -> ProfilingOutcome:
    """Run every point of ``d`` (``repeats`` times each), stored and tagged as profiling.

    ``outcome`` (filled as runs finish) lets a caller report what was spent even when a
    run fails or is interrupted: RunFailed/KeyboardInterrupt propagate, runs done so far
    stay stored and in ``outcome``.
    """
    outcome = ProfilingOutcome() if outcome is None else outcome
    base = base.validated()
    for i, point in enumerate(d.points):
        result = run(d.config(base, point), db=db, workload=workload)
        outcome.results.append(result)
        if on_run:
            on_run(i, point, result)
    return outcome


def store_timings(store: Store, framework: str, profiles: Sequence[Profile],
                  meter: Mapping[str, str] | None = None) -> list[str]:
    """Store imported profiles, one finished profiling run each; their run ids.

    Each profile's ``run_id`` says where in the imported file it came from (stored as
    ``source_id``). A profile without energy is stored with null energy — no meter saw it —
    which is what makes :func:`rayjoule.modelling.profiles_from_store` read it back as a
    time-only profile; one with energy (an imported file that carries ``energy_j``) keeps
    its ``total_j`` on its stage, under ``meter`` (``{"name", "kind"}``: who measured it,
    measured or modelled). All profiles go in one transaction: a failure stores none.
    """
    runs = []
    for p in profiles:
        energy = None if p.total_j is None else {"total_j": p.total_j}
        run_id = new_run_id()
        config = {"workload": p.workload, "framework": framework, "profile": True,
                  "tasks": p.tasks, "num_cpus": p.num_cpus, "size": p.size,
                  "memory_mb": p.memory_mb, "source": p.source}
        stage = {"name": p.stage, "tasks": p.tasks, "num_cpus": p.num_cpus,
                 "wall_s": p.wall_s, "energy": energy, "memory_mb": p.memory_mb,
                 "cold_start_s": p.cold_start_s}
        result = {"run_id": run_id, "workload": p.workload, "framework": framework,
                  "config": config, "wall_s": p.wall_s, "energy": energy,
                  "meter": None if energy is None or meter is None else dict(meter),
                  "stages": [stage], "summary": {}, "status": "ok", "error": None,
                  "source": p.source, "source_id": p.run_id}
        runs.append(ImportedRun(run_id, p.workload, framework, p.wall_s, config, result))
    return store.add_imported(runs)
