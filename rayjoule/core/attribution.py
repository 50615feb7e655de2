"""Split a host's dynamic energy among the tasks that ran on it.

The rule is the one Scaphandre and Kepler use: over a window, each task gets
the host's dynamic energy in proportion to its share of the CPU time spent by
the window's tasks on that host. When those tasks used no measurable CPU
(a sleep), the split falls back to their share of wall time. The split
conserves energy: the tasks' energies on a host sum to its dynamic energy.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence

from rayjoule.core.result import TaskRecord


def attribute(
    tasks: Sequence[TaskRecord], dynamic_j_by_host: Mapping[str, float]
) -> tuple[list[TaskRecord], dict[str, float]]:
    """Give each task its share of its host's dynamic energy.

    Returns the tasks with ``energy_j`` set (in the input order) and, per host,
    the dynamic energy no task could take (a host that metered energy but ran
    none of the tasks, e.g. the driver's).

    >>> t = [TaskRecord(0, "n", "h", 1, 0.0, 1.0, 3.0), TaskRecord(1, "n", "h", 2, 0.0, 1.0, 1.0)]
    >>> done, rest = attribute(t, {"h": 8.0})
    >>> [x.energy_j for x in done], rest
    ([6.0, 2.0], {'h': 0.0})
    """
    by_host: dict[str, list[int]] = defaultdict(list)
    for i, task in enumerate(tasks):
        by_host[task.host].append(i)
    energies = [0.0] * len(tasks)
    unattributed: dict[str, float] = {}
    for host, dynamic_j in dynamic_j_by_host.items():
        idx = by_host.get(host, [])
        if not idx:
            unattributed[host] = dynamic_j
            continue
        weights = [max(tasks[i].cpu_s, 0.0) for i in idx]
        if sum(weights) <= 0.0:
            weights = [max(tasks[i].end - tasks[i].start, 0.0) for i in idx]
        if sum(weights) <= 0.0:
            weights = [1.0] * len(idx)
        total_w = sum(weights)
        for i, w in zip(idx, weights, strict=True):
            energies[i] = dynamic_j * w / total_w
        unattributed[host] = 0.0
    orphans = set(by_host) - set(dynamic_j_by_host)
    if orphans:
        raise ValueError(f"tasks ran on host(s) with no meter: {', '.join(sorted(orphans))}")
    done = [dataclasses.replace(t, energy_j=e) for t, e in zip(tasks, energies, strict=True)]
    return done, unattributed
