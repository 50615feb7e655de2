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

Cost: on Linux the tracker reads ``/proc`` directly (one ``stat`` read per
tracked process per sample, plus one per *new* pid on the host to learn its
parent; the parent map is rebuilt from scratch every :data:`FULL_SCAN_S`),
about 10× cheaper than walking the process table with psutil each time.
Elsewhere it falls back to psutil.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import psutil

PidSource = Callable[[], Iterable[int]]
#: Rebuild the cached parent map from scratch this often (seconds), in case a pid was reused.
FULL_SCAN_S = 30.0
#: Start times are in clock ticks (10 ms): a process that started this close before the
#: tracker and is first seen later counts whole (at most this much of it predates the tracker).
START_SLACK_S = 0.02


@dataclass(frozen=True)
class ProcStat:
    """What the tracker needs of one process at one instant."""

    ppid: int
    own_s: float  # user + system
    children_s: float  # children_user + children_system (reaped children)
    start_s: float  # start time; with the pid it identifies the process


class ProcTable(Protocol):
    def ppids(self) -> dict[int, int]: ...

    def stat(self, pid: int) -> ProcStat | None: ...

    def now_s(self) -> float:
        """The current time on the clock of ``ProcStat.start_s``."""
        ...


class LinuxProcTable:
    """``/proc`` read directly, with a cached pid → parent map."""

    def __init__(self, proc: str = "/proc") -> None:
        self._proc = proc
        self._tick = float(os.sysconf("SC_CLK_TCK"))
        self._ppid: dict[int, int] = {}
        self._last_full = float("-inf")

    def _read(self, pid: int) -> list[str] | None:
        try:
            fd = os.open(f"{self._proc}/{pid}/stat", os.O_RDONLY)
        except OSError:
            return None
        try:
            text = os.read(fd, 4096).decode("ascii", "replace")
        except OSError:
            return None
        finally:
            os.close(fd)
        end = text.rfind(")")  # the command name may hold spaces and parentheses
        return text[end + 2 :].split() if end > 0 else None

    def ppids(self) -> dict[int, int]:
        now = time.monotonic()
        if now - self._last_full > FULL_SCAN_S:
            self._ppid, self._last_full = {}, now
        try:
            live = {int(n) for n in os.listdir(self._proc) if n.isdigit()}
        except OSError:
            return {}
        for pid in self._ppid.keys() - live:
            del self._ppid[pid]
        for pid in live - self._ppid.keys():
            fields = self._read(pid)
            if fields is not None and len(fields) > 1:
                self._ppid[pid] = int(fields[1])
        return self._ppid

    def stat(self, pid: int) -> ProcStat | None:
        f = self._read(pid)
        if f is None or len(f) < 20:
            return None
        t = self._tick
        ppid = int(f[1])
        self._ppid[pid] = ppid
        return ProcStat(ppid, (int(f[11]) + int(f[12])) / t, (int(f[13]) + int(f[14])) / t,
                        int(f[19]) / t)

    def now_s(self) -> float:
        return time.clock_gettime(time.CLOCK_BOOTTIME)


class PsutilProcTable:
    """The portable fallback (slower: psutil walks the whole process table)."""

    def ppids(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for proc in psutil.process_iter(["ppid"]):
            ppid = proc.info.get("ppid")
            if ppid is not None:
                out[proc.pid] = ppid
        return out

    def stat(self, pid: int) -> ProcStat | None:
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                t = proc.cpu_times()
                return ProcStat(proc.ppid(), t.user + t.system,
                                t.children_user + t.children_system, proc.create_time())
        except psutil.Error:
            return None

    def now_s(self) -> float:
        return time.time()


def default_table() -> ProcTable:
    return LinuxProcTable() if os.path.exists("/proc/self/stat") else PsutilProcTable()


class ProcessTreeCpu:
    """Cumulative CPU-seconds of the processes rooted at ``roots()``, since creation.

    >>> tree = ProcessTreeCpu(lambda: [1])
    >>> tree() >= 0.0
    True
    """

    def __init__(self, roots: PidSource, table: ProcTable | None = None) -> None:
        self._roots = roots
        self._table = table or default_table()
        self._lock = threading.Lock()
        self._tracked: dict[int, ProcStat] = {}
        self._total_s = 0.0
        self._t0 = self._table.now_s()
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

    def _members(self) -> set[int]:
        ppids = self._table.ppids()
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
        return members

    def _sample(self) -> None:
        seen: dict[int, ProcStat] = {}
        delta_own = 0.0
        delta_children: dict[int, float] = {}
        for pid in self._members():
            now = self._table.stat(pid)
            if now is None:
                continue
            old = self._tracked.get(pid)
            if old is not None and abs(old.start_s - now.start_s) < 1e-6:
                d_own, d_kids = now.own_s - old.own_s, now.children_s - old.children_s
            elif self._started and now.start_s >= self._t0 - START_SLACK_S:
                d_own, d_kids = now.own_s, now.children_s  # born while metering: all ours
            else:
                d_own = d_kids = 0.0  # existed before the tracker: count from now on
            delta_own += max(0.0, d_own)
            delta_children[pid] = max(0.0, d_kids)
            seen[pid] = now

        # Tracked processes that disappeared were (usually) reaped by their nearest live
        # ancestor, whose children time now holds their whole lifetime: remove what we
        # had already counted from them.
        gone = {pid: s for pid, s in self._tracked.items() if pid not in seen}
        counted: dict[int, float] = defaultdict(float)
        for s in gone.values():
            parent, hops = s.ppid, 0
            while parent in gone and hops < 64:
                parent, hops = gone[parent].ppid, hops + 1
            if parent in seen:
                counted[parent] += s.own_s + s.children_s
        delta_kids = sum(max(0.0, d - counted[pid]) for pid, d in delta_children.items())
        self._total_s += delta_own + delta_kids
        self._tracked = seen
