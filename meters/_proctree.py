"""CPU-seconds used by a process tree, robust to children that come and go.

The tdp model's process scope needs the CPU time of "this job": a root
process, all its descendants (re-enumerated at every sample so that new
workers count) and any extra pids a caller names (Ray's raylet, GCS and
workers are not children of the driver). Processes that exit between two
samples must not take their CPU time with them, so besides each process's own
``user + system`` time the tracker reads ``children_user + children_system``
(the time of children the process has reaped): when a tracked child is
reaped, its parent's children time grows by the child's whole lifetime, of
which the part already counted (the child's last observed totals) is
subtracted. What remains is the child's time since its last sample, plus the
whole time of short-lived children that were never seen at all.

A process first seen after the tracker started counts from 0 if it was
created after the tracker started, and from its current CPU time otherwise
(an old raylet added later by a pid provider does not bring its past).
Only the parts a process's parent never reaps (a re-parented orphan that
exits) can be lost, and only since its last sample.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil

PidSource = Callable[[], Iterable[int]]


@dataclass
class _Tracked:
    proc: psutil.Process
    ppid: int
    own_s: float  # user + system at the last sample
    children_s: float  # children_user + children_system at the last sample


class ProcessTreeCpu:
    """Cumulative CPU-seconds of the processes rooted at ``roots()``, since creation.

    >>> tree = ProcessTreeCpu(lambda: [1])
    >>> tree() >= 0.0
    True
    """

    def __init__(self, roots: PidSource) -> None:
        self._roots = roots
        self._lock = threading.Lock()
        self._tracked: dict[int, _Tracked] = {}
        self._total_s = 0.0
        self._t0_wall = time.time()
        self._started = False
        self.__call__()  # baseline: what already ran before the meter started is not counted
        self._started = True

    @property
    def pids(self) -> list[int]:
        """The pids seen at the last sample."""
        with self._lock:
            return sorted(self._tracked)

    def __call__(self) -> float:
        with self._lock:
            self._sample()
            return self._total_s

    def _members(self) -> tuple[dict[int, int], set[int]]:
        ppids: dict[int, int] = {}
        for proc in psutil.process_iter(["ppid"]):
            ppid = proc.info.get("ppid")
            if ppid is not None:
                ppids[proc.pid] = ppid
        children: dict[int, list[int]] = defaultdict(list)
        for pid, ppid in ppids.items():
            children[ppid].append(pid)
        members: set[int] = set()
        stack = [int(p) for p in self._roots() if int(p) in ppids]
        while stack:
            pid = stack.pop()
            if pid not in members:
                members.add(pid)
                stack.extend(children.get(pid, ()))
        # once in the tree, a process counts until it exits, even if re-parented away
        members.update(pid for pid in self._tracked if pid in ppids)
        return ppids, members

    def _sample(self) -> None:
        ppids, members = self._members()
        seen: dict[int, _Tracked] = {}
        delta_own = 0.0
        delta_children: dict[int, float] = {}
        for pid in members:
            old = self._tracked.get(pid)
            try:
                if old is not None and old.proc.is_running():
                    proc = old.proc
                else:
                    old = None
                    proc = psutil.Process(pid)
                with proc.oneshot():
                    times = proc.cpu_times()
                    created = proc.create_time()
            except psutil.Error:
                continue
            own = times.user + times.system
            kids = times.children_user + times.children_system
            if old is not None:
                d_own, d_kids = own - old.own_s, kids - old.children_s
            elif self._started and created >= self._t0_wall:
                d_own, d_kids = own, kids  # born while metering: all of it is ours
            else:
                d_own = d_kids = 0.0  # existed before: count from now on
            delta_own += max(0.0, d_own)
            delta_children[pid] = max(0.0, d_kids)
            seen[pid] = _Tracked(proc, ppids.get(pid, 0), own, kids)

        # Tracked processes that disappeared were (usually) reaped by their nearest live
        # ancestor, whose children time now holds their whole lifetime: remove what we
        # had already counted from them.
        gone = {pid: t for pid, t in self._tracked.items() if pid not in seen}
        counted: dict[int, float] = defaultdict(float)
        for t in gone.values():
            parent, hops = t.ppid, 0
            while parent in gone and hops < 64:
                parent, hops = gone[parent].ppid, hops + 1
            if parent in seen:
                counted[parent] += t.own_s + t.children_s
        delta_kids = sum(max(0.0, d - counted[pid]) for pid, d in delta_children.items())
        self._total_s += delta_own + delta_kids
        self._tracked = seen
