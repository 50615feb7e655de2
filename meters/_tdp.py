"""The "tdp" model: CPU energy from utilisation × a power curve, for hosts without counters.

Why: VMs and containers rarely expose RAPL or perf power events, yet runs
there still need an energy figure. This meter *estimates* it, and says so:
its ``kind`` is always ``"modelled"``.

The curve (per vCPU, linear between idle and full load; the constants and
where they come from — the CPU power table, ``tdp_watts`` / ``cpu_threads``
or ``$RAYJOULE_TDP_WATTS`` / ``$RAYJOULE_CPU_THREADS``, threads or cores as
the unit — are worked out by :mod:`meters._tdp_model`)::

    P(u) = N·P_idle + u·N·(P_max − P_idle)    host watts at utilisation u ∈ [0, 1]

``N`` is the number of vCPUs this host sees (``psutil.cpu_count()``).
Because the curve is linear, energy over an interval Δt only needs the busy
CPU-seconds ``C`` spent in it, whatever happened inside::

    E = N·P_idle·Δt + C·(P_max − P_idle),     C ≤ N·Δt

Scope ``"host"``: ``C`` is the whole host's busy time from
``psutil.cpu_times()`` (user + nice + system + irq + softirq; idle, iowait
and steal are not busy). Scope ``"process"``: ``C`` is the CPU time of a
process tree (this process and its descendants, plus any pids a caller adds,
e.g. Ray's raylet, GCS and workers); the static part stays the host's idle
power, so static/dynamic splitting (static = :attr:`TdpMeter.idle_watts` ×
wall) works the same in both scopes and the dynamic part is the tree's own.

Host scope needs no background thread (cumulative counters integrate
exactly); process scope samples every ``interval_s`` so that children are
seen before they exit (see :mod:`meters._proctree`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import psutil

from meters._base import MODELLED, Meter, MeterError, Probe, Reading
from meters._proctree import ProcessTreeCpu
from meters._sampler import Sampler
from meters._tdp_model import IDLE_FRACTION, resolve_model

DEFAULT_INTERVAL_S = 1.0
SCOPES = ("host", "process")
DOMAIN = "cpu"

PidsArg = int | Iterable[int] | Callable[[], Iterable[int]] | None


def host_busy_seconds() -> float:
    """Busy CPU-seconds of the whole host since boot (all CPUs added up)."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)


class TdpMeter(Meter):
    """Modelled CPU energy: utilisation × the host's power curve (domain ``"cpu"``).

    >>> with TdpMeter() as m:                               # doctest: +SKIP
    ...     r0 = m.read(); work(); r1 = m.read()
    ...     r1.total - r0.total, m.idle_watts
    >>> TdpMeter(scope="process", pids=lambda: ray_pids())  # doctest: +SKIP
    """

    name = "tdp"
    kind = MODELLED

    def __init__(
        self,
        tdp_watts: float | None = None,
        scope: str = "host",
        pids: PidsArg = None,
        cpu_model: str | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
        *,
        include_self: bool = True,
        cpu_threads: int | None = None,
        vcpus: int | None = None,
        idle_fraction: float = IDLE_FRACTION,
        cpuinfo: str | os.PathLike[str] | None = None,
        table: str | os.PathLike[str] | None = None,
        smt: bool | None = None,
        cpu_seconds: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``tdp_watts`` / ``cpu_threads``: price a vCPU at ``tdp_watts / cpu_threads`` at full
        load (each overrides ``$RAYJOULE_TDP_WATTS`` / ``$RAYJOULE_CPU_THREADS``, which
        override the table). ``cpuinfo``: the cpuinfo file (model name, SMT); ``smt``
        overrides whether a vCPU is a hardware thread. ``scope``: ``"host"`` or
        ``"process"``. ``pids`` (process scope): an int root pid (instead of this process),
        or pids / a callable returning pids whose trees are added to this process's
        (``include_self=False`` leaves this process out). ``cpu_seconds`` replaces the
        busy-CPU source (tests), ``clock`` the monotonic clock.
        """
        super().__init__()
        if scope not in SCOPES:
            raise MeterError(f"scope must be one of {SCOPES}, got {scope!r}")
        if not interval_s > 0:
            raise MeterError(f"interval_s must be > 0, got {interval_s!r}")
        self.scope = scope
        self.model = resolve_model(tdp_watts=tdp_watts, cpu_model=cpu_model,
                                   cpu_threads=cpu_threads, vcpus=vcpus,
                                   idle_fraction=idle_fraction, cpuinfo=cpuinfo, table=table,
                                   smt=smt)
        self.domains = [DOMAIN]
        self.interval_s = float(interval_s)
        self._pids_lock = threading.Lock()
        self._extra: Callable[[], Iterable[int]] = lambda: ()
        self._include_self = include_self
        self._root: int | None = None
        if isinstance(pids, int):
            self._root = pids
        elif pids is not None:
            self.set_pids(pids)
        self._tree: ProcessTreeCpu | None = None
        if cpu_seconds is not None:
            source = cpu_seconds
        elif scope == "host":
            source = host_busy_seconds
        else:
            self._tree = ProcessTreeCpu(self._roots)
            source = self._tree
        self._source = source
        self._clock = clock
        self._lock = threading.RLock()
        self._energy_j = 0.0
        self._t_last = clock()
        self._busy_last = source()
        self._sampler: Sampler | None = None
        if scope == "process":
            self._sampler = Sampler(self._sample, self.interval_s, name="tdp-sampler")
            self._sampler.start()

    # -- process scope -----------------------------------------------------
    def set_pids(self, pids: Iterable[int] | Callable[[], Iterable[int]]) -> None:
        """Add these pids (and their descendants) to the process tree from the next sample on.

        A callable is called at every sample, so it can follow workers as they start.
        """
        if callable(pids):
            fn = pids
        else:
            fixed = [int(p) for p in pids]
            fn = lambda: fixed  # noqa: E731
        with self._pids_lock:
            self._extra = fn

    def _roots(self) -> list[int]:
        roots: list[int] = []
        if self._root is not None:
            roots.append(self._root)
        elif self._include_self:
            roots.append(os.getpid())
        with self._pids_lock:
            extra = self._extra
        roots.extend(int(p) for p in extra())
        return roots

    @property
    def tracked_pids(self) -> list[int]:
        """Process scope: the pids seen at the last sample (empty for host scope)."""
        return self._tree.pids if self._tree is not None else []

    # -- the model ---------------------------------------------------------
    @property
    def idle_watts(self) -> float:
        """The model's idle power of the host (the runner's static power for modelled runs)."""
        return self.model.idle_watts

    @property
    def max_watts(self) -> float:
        return self.model.max_watts

    def describe(self) -> dict[str, Any]:
        """The constants, where they came from, and the curve (for the CLI and records)."""
        return {"scope": self.scope, **self.model.describe()}

    def _basis(self) -> dict[str, Any]:
        return self.describe()

    # -- metering ----------------------------------------------------------
    def _sample(self) -> float:
        with self._lock:
            t = self._clock()
            busy = float(self._source())
            self._energy_j += self.model.energy_j(t - self._t_last, busy - self._busy_last)
            self._t_last, self._busy_last = t, busy
            return t

    def _read(self) -> Reading:
        if self._sampler is not None:
            self._sampler.check()
        with self._lock:
            t = self._sample()
            return Reading({DOMAIN: self._energy_j}, t=t, kind=MODELLED, source=self.name)

    def _close(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()

    @classmethod
    def _probe(cls, **options: Any) -> Probe:
        try:
            resolve_model(**{k: options[k] for k in (
                "tdp_watts", "cpu_model", "cpu_threads", "vcpus", "idle_fraction", "cpuinfo",
                "table", "smt") if k in options})
            psutil.cpu_times()
        except (MeterError, OSError, ValueError) as exc:
            return Probe(False, str(exc), MODELLED, [])
        return Probe(True, None, MODELLED, [DOMAIN])
