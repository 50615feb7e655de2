"""Turn what a run measured (windows, task records, the summary) into a RunResult.

Per host: static = idle power × wall time, dynamic = total − static; then attribution
(:mod:`rayjoule.core.attribution`) splits each host between its tasks and its overhead,
and each stage gets its tasks' energy plus the overhead apportioned by its wall time.
Hosts whose meter was lost mid-run keep the energy measured until then (``complete`` =
False). Calls on a remote function platform bring their own energy (``call_energy``,
metered inside the call), which stands for their host.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from rayjoule.core.attribution import HostShare, attribute
from rayjoule.core.config import RunConfig
from rayjoule.core.result import (
    Energy,
    HostEnergy,
    MeterLabel,
    RunResult,
    StageResult,
    TaskRecord,
)
from rayjoule.frameworks.job import Job
from rayjoule.metering.host_meter import IdleBaseline, WindowEnergy

NO_BASELINE = IdleBaseline(0.0, "no idle baseline for this host (it joined mid-run)")


@dataclass
class Measured:
    """Everything one repeat produced, filled in as the run goes (partial on failure)."""

    run_id: str
    config: RunConfig
    started_at: float
    wall_s: float = 0.0
    records: list[TaskRecord] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    windows: dict[str, WindowEnergy] = field(default_factory=dict)
    error: BaseException | None = None


def assemble(m: Measured, idle: dict[str, IdleBaseline], label: MeterLabel,
             host_info: dict[str, dict[str, Any]], job: Job) -> RunResult:
    """The attributed RunResult of ``m``; raises UnmeteredHosts for tasks no meter saw."""
    if not m.windows and any(r.call_energy for r in m.records):
        hosts = _call_hosts(m.records)
        label = _call_label(m.records)
    else:
        hosts = [_host_energy(w, idle.get(h, NO_BASELINE), m.wall_s, host_info.get(h, {}))
                 for h, w in sorted(m.windows.items())]
    tasks, overhead = attribute(m.records, {
        h.host: HostShare(h.energy.static_j, h.energy.dynamic_j, h.busy_cpu_s) for h in hosts
    })
    hosts = [dataclasses.replace(h, energy=dataclasses.replace(h.energy,
                                                               overhead_j=overhead[h.host]))
             for h in hosts]
    total = _sum_energy(hosts)
    c = m.config
    return RunResult(
        run_id=m.run_id, workload=c.workload, framework=c.framework, config=c.to_dict(),
        wall_s=m.wall_s, energy=total, meter=label, tasks=tasks, summary=m.summary,
        hosts=hosts, started_at=m.started_at, stages=_stages(job, tasks, total.overhead_j),
    )


def _host_energy(w: WindowEnergy, base: IdleBaseline, wall_s: float,
                 info: dict[str, Any]) -> HostEnergy:
    if w.complete:
        static = base.watts * wall_s
    else:  # measured until the host was lost: its idle share ends there too
        static = min(base.watts * w.seconds, w.total_j)
    energy = Energy(w.total_j, static, w.total_j - static, dict(w.by_domain))
    return HostEnergy(w.host, w.meter, energy, base.watts, base.policy, complete=w.complete,
                      busy_cpu_s=w.busy_cpu_s, info=info, window_s=w.seconds)


def _call_hosts(records: list[TaskRecord]) -> list[HostEnergy]:
    """Hosts of a remote function platform: each call's self-metered energy, summed per host."""
    by_host: dict[str, list[TaskRecord]] = defaultdict(list)
    for r in records:
        by_host[r.host].append(r)
    hosts = []
    for host, recs in sorted(by_host.items()):
        static = math.fsum(r.call_energy.get("static_j", 0.0) for r in recs)
        total = math.fsum(r.call_energy["energy_j"] for r in recs)
        first = recs[0].call_energy
        meter = MeterLabel(f"call:{first['meter']}", first["kind"])
        policy = ("metered inside each call (remote function platform): "
                  f"{first.get('basis', {}).get('model', first['meter'])}")
        hosts.append(HostEnergy(
            host, meter, Energy(total, static, total - static),
            idle_w=0.0, idle_policy=policy,
            busy_cpu_s=math.fsum(r.cpu_s for r in recs),
            info={"calls": len(recs), "basis": first.get("basis", {})},
        ))
    return hosts


def _call_label(records: list[TaskRecord]) -> MeterLabel:
    kinds = {r.call_energy["kind"] for r in records if r.call_energy}
    names = sorted({r.call_energy["meter"] for r in records if r.call_energy})
    return MeterLabel("call:" + "+".join(names),
                      "measured" if kinds == {"measured"} else "modelled")


def _sum_energy(hosts: list[HostEnergy]) -> Energy:
    by_domain: dict[str, float] = {}
    for h in hosts:
        for d, j in h.energy.by_domain.items():
            key = d if len(hosts) == 1 else f"{h.host}/{d}"
            by_domain[key] = by_domain.get(key, 0.0) + j
    return Energy(
        total_j=math.fsum(h.energy.total_j for h in hosts),
        static_j=math.fsum(h.energy.static_j for h in hosts),
        dynamic_j=math.fsum(h.energy.dynamic_j for h in hosts),
        by_domain=by_domain,
        overhead_j=math.fsum(h.energy.overhead_j for h in hosts),
    )


def _stages(job: Job, tasks: list[TaskRecord], overhead_j: float) -> list[StageResult]:
    """Per stage: its tasks' energy plus the run's overhead apportioned by stage wall time."""
    by_stage: dict[str, list[TaskRecord]] = defaultdict(list)
    for t in tasks:
        by_stage[t.stage].append(t)
    walls = {s.name: (max(t.end for t in by_stage[s.name]) - min(t.start for t in by_stage[s.name])
                      if by_stage[s.name] else 0.0) for s in job.stages}
    total_wall = math.fsum(walls.values())
    stages = []
    for s in job.stages:
        recs = by_stage[s.name]
        share = overhead_j * walls[s.name] / total_wall if total_wall > 0 \
            else overhead_j / len(job.stages)
        static = math.fsum(t.static_j for t in recs)
        dynamic = math.fsum(t.dynamic_j for t in recs)
        stages.append(StageResult(s.name, s.tasks, s.num_cpus, walls[s.name],
                                  Energy(static + dynamic + share, static, dynamic + share,
                                         overhead_j=share)))
    return stages
