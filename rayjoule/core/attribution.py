"""Split each host's energy between the tasks that ran on it and the framework's overhead.

Per host, over a run's window (DESIGN.md, "Attribution"):

* **dynamic** — a task gets its own CPU time × the host's dynamic joules per *busy*
  CPU-second, where busy CPU-seconds are what the whole host spent (every process:
  the tasks, the framework's daemons, the driver). What the tasks' CPU time does not
  explain is the host's ``overhead_j``: it grows with the framework's own work, which
  a rule that splits all dynamic energy by CPU *share* (Scaphandre/Kepler) would hide
  inside the tasks. When the tasks' CPU time exceeds the host's busy time (clock
  granularity, a meter that saw fewer processes) the rate falls back to dynamic ÷ the
  tasks' CPU time, so no task is ever charged more than the host measured.
* **static** — the host's idle power × wall time is split among its tasks by the time
  each held a slot (wall time × CPUs reserved); a host that ran no task keeps its
  static energy as overhead.

Σ tasks' ``energy_j`` + Σ hosts' ``overhead_j`` = Σ hosts' ``total_j`` exactly (up to
floating point), which the tests check to 1e-9 relative.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rayjoule.core.errors import UnmeteredHosts
from rayjoule.core.result import TaskRecord


@dataclass(frozen=True)
class HostShare:
    """What attribution needs of one host's window."""

    static_j: float
    dynamic_j: float
    busy_cpu_s: float


def attribute(
    tasks: Sequence[TaskRecord], hosts: Mapping[str, HostShare]
) -> tuple[list[TaskRecord], dict[str, float]]:
    """Give each task its static and dynamic share; return (tasks, overhead_j by host).

    Raises :class:`UnmeteredHosts` naming each host that ran tasks but has no window.

    >>> t = [TaskRecord(0, "n", "h", 1, 0.0, 1.0, 3.0), TaskRecord(1, "n", "h", 2, 0.0, 1.0, 1.0)]
    >>> done, overhead = attribute(t, {"h": HostShare(static_j=2.0, dynamic_j=10.0,
    ...                                                busy_cpu_s=5.0)})
    >>> [(x.static_j, x.dynamic_j, x.energy_j) for x in done], overhead
    ([(1.0, 6.0, 7.0), (1.0, 2.0, 3.0)], {'h': 2.0})
    """
    by_host: dict[str, list[int]] = defaultdict(list)
    for i, task in enumerate(tasks):
        by_host[task.host].append(i)
    missing = {h: len(idx) for h, idx in by_host.items() if h not in hosts}
    if missing:
        raise UnmeteredHosts(missing)
    static = [0.0] * len(tasks)
    dynamic = [0.0] * len(tasks)
    overhead: dict[str, float] = {}
    for host, share in hosts.items():
        idx = by_host.get(host, [])
        if not idx:
            overhead[host] = share.static_j + share.dynamic_j
            continue
        cpu = [max(tasks[i].cpu_s, 0.0) for i in idx]
        busy = max(share.busy_cpu_s, sum(cpu))
        rate = share.dynamic_j / busy if busy > 0 else 0.0
        slots = [max(tasks[i].wall_s, 0.0) * tasks[i].slot_cpus for i in idx]
        if sum(slots) <= 0:
            slots = [1.0] * len(idx)
        total_slots = sum(slots)
        for i, c, s in zip(idx, cpu, slots, strict=True):
            dynamic[i] = c * rate
            static[i] = share.static_j * s / total_slots
        overhead[host] = share.dynamic_j - sum(dynamic[i] for i in idx)
    done = [t.with_energy(s, d) for t, s, d in zip(tasks, static, dynamic, strict=True)]
    return done, overhead
