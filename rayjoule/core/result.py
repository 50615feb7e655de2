"""Records of a metered run: what ran where, how long, and how many joules.

Units are in the field names (``energy_j``, ``wall_s``). Every energy figure
travels with the meter that produced it and whether it was measured or
modelled. Records round-trip through ``to_dict``/``from_dict``.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TaskRecord:
    """One task's execution: where it ran, when, its own CPU time and its share of energy.

    ``static_j`` is its share of the host's idle power (by the time it held a slot),
    ``dynamic_j`` its CPU time × the host's dynamic joules per busy CPU-second, and
    ``energy_j`` = both. ``slot_cpus`` is how many CPUs the framework reserved for it.
    """

    task_id: int
    node_id: str
    host: str
    pid: int
    start: float
    end: float
    cpu_s: float
    stage: str = "map"
    slot_cpus: float = 1.0
    static_j: float = 0.0
    dynamic_j: float = 0.0
    energy_j: float = 0.0
    #: the framework's own per-call timings where it gives them (Lithops' future stats)
    framework_stats: dict[str, Any] = field(default_factory=dict)
    #: energy the task metered itself (remote function platforms), with its meter and basis
    call_energy: dict[str, Any] = field(default_factory=dict)

    @property
    def wall_s(self) -> float:
        return self.end - self.start

    def with_energy(self, static_j: float, dynamic_j: float) -> TaskRecord:
        """A copy carrying its energy shares.

        Not ``dataclasses.replace``, which re-runs ``__init__`` through keyword arguments:
        attribution makes one copy per task, and at thousands of short tasks that was a
        measurable part of the driver's time per run (experiments/bench_speed.py).
        """
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__, static_j=static_j, dynamic_j=dynamic_j,
                            energy_j=static_j + dynamic_j)
        return new

    def to_dict(self) -> dict[str, Any]:
        d = {f: getattr(self, f) for f in _TASK_FIELDS}  # not asdict: 100k tasks must be quick
        for optional in ("framework_stats", "call_energy"):
            value = getattr(self, optional)
            if value:
                d[optional] = dict(value)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskRecord:
        return cls(**d)


_TASK_FIELDS = ("task_id", "node_id", "host", "pid", "start", "end", "cpu_s", "stage",
                "slot_cpus", "static_j", "dynamic_j", "energy_j")


@dataclass(frozen=True)
class Energy:
    """Energy of one run, host or stage: total = static + dynamic = tasks' + overhead.

    ``overhead_j`` is what the tasks' own CPU time and slots do not explain: framework
    daemons, the driver, scheduling, other processes on the host.
    """

    total_j: float
    static_j: float
    dynamic_j: float
    by_domain: dict[str, float] = field(default_factory=dict)
    overhead_j: float = 0.0

    @property
    def tasks_j(self) -> float:
        """The tasks' share: total − overhead."""
        return self.total_j - self.overhead_j

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_j": self.total_j,
            "static_j": self.static_j,
            "dynamic_j": self.dynamic_j,
            "tasks_j": self.tasks_j,
            "overhead_j": self.overhead_j,
            "by_domain": dict(self.by_domain),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Energy:
        return cls(d["total_j"], d["static_j"], d["dynamic_j"], dict(d.get("by_domain", {})),
                   d.get("overhead_j", 0.0))


@dataclass(frozen=True)
class MeterLabel:
    """Where an energy figure came from: meter name(s) and measured/modelled."""

    name: str
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind}


@dataclass(frozen=True)
class HostEnergy:
    """A physical host's share of a run, with the idle policy that split static from dynamic.

    ``complete`` is False when the host was lost mid-run: its energy is what was
    measured until then. ``info`` describes the machine and the meter's basis
    (CPU model, vCPUs, SMT, table row or override), so runs from different
    machines can be compared later. ``busy_cpu_s`` is the CPU time the whole host
    spent over the window, the denominator of the dynamic attribution; ``window_s`` the
    seconds the host's meter window covered (it opens before the run's work and closes
    after it, so it is at least the run's wall time: the run-power gauge is
    ``energy.total_j / window_s``; 0 where no window was kept, e.g. self-metered calls).
    """

    host: str
    meter: MeterLabel
    energy: Energy
    idle_w: float
    idle_policy: str
    complete: bool = True
    busy_cpu_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    window_s: float = 0.0

    @property
    def overhead_j(self) -> float:
        return self.energy.overhead_j

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "meter": self.meter.to_dict(),
            "energy": self.energy.to_dict(),
            "idle_w": self.idle_w,
            "idle_policy": self.idle_policy,
            "complete": self.complete,
            "busy_cpu_s": self.busy_cpu_s,
            "window_s": self.window_s,
            "info": dict(self.info),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HostEnergy:
        return cls(
            host=d["host"],
            meter=MeterLabel(**d["meter"]),
            energy=Energy.from_dict(d["energy"]),
            idle_w=d["idle_w"],
            idle_policy=d["idle_policy"],
            complete=d.get("complete", True),
            busy_cpu_s=d.get("busy_cpu_s", 0.0),
            info=dict(d.get("info", {})),
            window_s=d.get("window_s", 0.0),
        )


@dataclass(frozen=True)
class StageResult:
    """One stage of a pipeline run: its settings, wall time and energy (tasks' + overhead).

    A stage's overhead is the run's overhead apportioned by the stage's wall time:
    the framework's daemons burn while the stage runs.
    """

    name: str
    tasks: int
    num_cpus: float
    wall_s: float
    energy: Energy

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tasks": self.tasks, "num_cpus": self.num_cpus,
                "wall_s": self.wall_s, "energy": self.energy.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StageResult:
        return cls(d["name"], d["tasks"], d["num_cpus"], d["wall_s"],
                   Energy.from_dict(d["energy"]))


@dataclass(frozen=True)
class RunResult:
    """One run = workload × framework × config → wall time, energy, tasks, summary.

    With ``repeats`` > 1 the top-level figures are medians over ``repeats``
    and ``spread`` holds min/max of each.
    """

    run_id: str
    workload: str
    framework: str
    config: dict[str, Any]
    wall_s: float
    energy: Energy
    meter: MeterLabel
    tasks: list[TaskRecord]
    summary: dict[str, Any]
    hosts: list[HostEnergy] = field(default_factory=list)
    status: str = "ok"
    error: str | None = None
    started_at: float = 0.0
    repeats: list[RunResult] = field(default_factory=list)
    spread: dict[str, dict[str, float]] = field(default_factory=dict)
    stages: list[StageResult] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """False when any host was lost mid-run (its energy is partial)."""
        return all(h.complete for h in self.hosts)

    def to_dict(self, tasks: bool = True) -> dict[str, Any]:
        """The result as JSON-safe data; ``tasks=False`` leaves this run's task list out
        (the store keeps tasks in their own table; repeats keep theirs)."""
        d: dict[str, Any] = {
            "run_id": self.run_id,
            "workload": self.workload,
            "framework": self.framework,
            "config": dict(self.config),
            "wall_s": self.wall_s,
            "energy": self.energy.to_dict(),
            "meter": self.meter.to_dict(),
            "summary": dict(self.summary),
            "hosts": [h.to_dict() for h in self.hosts],
            "status": self.status,
            "error": self.error,
            "started_at": self.started_at,
            "complete": self.complete,
            "stages": [st.to_dict() for st in self.stages],
        }
        if tasks:
            d["tasks"] = [t.to_dict() for t in self.tasks]
        if self.repeats:
            d["repeats"] = [r.to_dict() for r in self.repeats]
            d["spread"] = {k: dict(v) for k, v in self.spread.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        return cls(
            run_id=d["run_id"],
            workload=d["workload"],
            framework=d["framework"],
            config=dict(d["config"]),
            wall_s=d["wall_s"],
            energy=Energy.from_dict(d["energy"]),
            meter=MeterLabel(**d["meter"]),
            tasks=[TaskRecord.from_dict(t) for t in d.get("tasks", [])],
            summary=dict(d.get("summary", {})),
            hosts=[HostEnergy.from_dict(h) for h in d.get("hosts", [])],
            status=d.get("status", "ok"),
            error=d.get("error"),
            started_at=d.get("started_at", 0.0),
            repeats=[RunResult.from_dict(r) for r in d.get("repeats", [])],
            spread={k: dict(v) for k, v in d.get("spread", {}).items()},
            stages=[StageResult.from_dict(st) for st in d.get("stages", [])],
        )


def combine_repeats(run_id: str, results: list[RunResult]) -> RunResult:
    """Fold several repeats of one config into a result whose figures are medians.

    The tasks of the median-energy repeat are kept as representative; every
    repeat stays available under ``repeats``.
    """
    if not results:
        raise ValueError("combine_repeats needs at least one result")
    if len(results) == 1:
        return results[0]
    series = {
        "wall_s": [r.wall_s for r in results],
        "total_j": [r.energy.total_j for r in results],
        "static_j": [r.energy.static_j for r in results],
        "dynamic_j": [r.energy.dynamic_j for r in results],
        "overhead_j": [r.energy.overhead_j for r in results],
    }
    med = {k: statistics.median(v) for k, v in series.items()}
    spread = {
        k: {"min": min(v), "max": max(v), "stdev": statistics.stdev(v)} for k, v in series.items()
    }
    by_total = sorted(results, key=lambda r: r.energy.total_j)
    representative = by_total[(len(by_total) - 1) // 2]
    domains = sorted({d for r in results for d in r.energy.by_domain})
    by_domain = {d: statistics.median([r.energy.by_domain.get(d, 0.0) for r in results])
                 for d in domains}
    return dataclasses.replace(
        representative,
        run_id=run_id,
        wall_s=med["wall_s"],
        energy=Energy(med["total_j"], med["static_j"], med["dynamic_j"], by_domain,
                      med["overhead_j"]),
        repeats=list(results),
        spread=spread,
    )
