"""The "tdp" model: CPU energy from utilisation × a power curve, for hosts without counters.

Why: VMs and containers rarely expose RAPL or perf power events, yet runs
there still need an energy figure. This meter *estimates* it, and says so:
its ``kind`` is always ``"modelled"``.

The curve (per vCPU, linear between idle and full load)::

    P_max  = TDP / threads                 W per vCPU at 100 % busy
    P_idle = IDLE_FRACTION × P_max         W per vCPU when idle
    P(u)   = N·P_idle + u·N·(P_max − P_idle)    host watts at utilisation u ∈ [0, 1]

``N`` is the number of vCPUs this host sees (``psutil.cpu_count()``), ``TDP``
and ``threads`` come from the CPU power table row matching the CPU's
``model name`` (``meters/cpu_power.csv``), or from ``tdp_watts`` (with
``cpu_threads``, default: the table row's threads, else ``N``). An unknown
CPU (a VM that only says "AMD EPYC") falls back to Cloud Carbon Footprint's
AWS averages, :data:`CCF_IDLE_W_PER_VCPU` = 0.74 W and
:data:`CCF_MAX_W_PER_VCPU` = 3.5 W per vCPU
(https://www.cloudcarbonfootprint.org/docs/methodology/).
:data:`IDLE_FRACTION` is the ratio of those two averages, 0.74 / 3.5 ≈ 0.21.

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
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from meters._base import MODELLED, Meter, MeterError, Probe, Reading
from meters._cpu_table import CpuPowerRow, load_cpu_table, match_cpu, read_cpu_model
from meters._proctree import ProcessTreeCpu
from meters._sampler import Sampler

#: Cloud Carbon Footprint's AWS average watts per vCPU at idle and at full load.
CCF_IDLE_W_PER_VCPU = 0.74
CCF_MAX_W_PER_VCPU = 3.5
#: Idle power as a fraction of full-load power (CCF's AWS ratio).
IDLE_FRACTION = CCF_IDLE_W_PER_VCPU / CCF_MAX_W_PER_VCPU
DEFAULT_INTERVAL_S = 1.0
SCOPES = ("host", "process")
DOMAIN = "cpu"

PidsArg = int | Iterable[int] | Callable[[], Iterable[int]] | None


@dataclass(frozen=True)
class TdpModel:
    """The constants of the curve for one host, and where they came from."""

    cpu_model: str | None
    basis: str  # "table", "tdp_watts" or "fallback"
    vcpus: int
    idle_w_per_vcpu: float
    max_w_per_vcpu: float
    idle_fraction: float
    row: CpuPowerRow | None
    tdp_w: float | None
    threads: int | None
    source: str

    @property
    def idle_watts(self) -> float:
        """Host power at 0 % utilisation."""
        return self.vcpus * self.idle_w_per_vcpu

    @property
    def max_watts(self) -> float:
        """Host power at 100 % utilisation."""
        return self.vcpus * self.max_w_per_vcpu

    @property
    def dynamic_w_per_vcpu(self) -> float:
        return self.max_w_per_vcpu - self.idle_w_per_vcpu

    def watts(self, utilisation: float) -> float:
        """P(u) for u in [0, 1]."""
        u = min(max(utilisation, 0.0), 1.0)
        return self.idle_watts + u * self.vcpus * self.dynamic_w_per_vcpu

    def energy_j(self, dt_s: float, busy_cpu_s: float) -> float:
        """Joules over ``dt_s`` seconds in which ``busy_cpu_s`` CPU-seconds were busy."""
        dt = max(dt_s, 0.0)
        busy = min(max(busy_cpu_s, 0.0), self.vcpus * dt)
        return self.idle_watts * dt + busy * self.dynamic_w_per_vcpu

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d["row"] = asdict(self.row) if self.row else None
        d.update(
            idle_watts=self.idle_watts,
            max_watts=self.max_watts,
            curve="P(u) = N*P_idle + u*N*(P_max - P_idle); P_max = TDP/threads per vCPU, "
            "P_idle = idle_fraction*P_max; E = N*P_idle*dt + busy_cpu_s*(P_max - P_idle)",
        )
        return d


def resolve_model(
    *,
    tdp_watts: float | None = None,
    cpu_model: str | None = None,
    cpu_threads: int | None = None,
    vcpus: int | None = None,
    idle_fraction: float = IDLE_FRACTION,
    cpuinfo: str | os.PathLike[str] | None = None,
    table: str | os.PathLike[str] | None = None,
) -> TdpModel:
    """Work out the curve's constants for this host (see the module docstring)."""
    if tdp_watts is not None and not tdp_watts > 0:
        raise MeterError(f"tdp_watts must be > 0 W, got {tdp_watts!r}")
    if not 0.0 <= idle_fraction < 1.0:
        raise MeterError(f"idle_fraction must be in [0, 1), got {idle_fraction!r}")
    if cpu_threads is not None and cpu_threads < 1:
        raise MeterError(f"cpu_threads must be >= 1, got {cpu_threads!r}")
    n = int(vcpus if vcpus is not None else (psutil.cpu_count(logical=True) or 1))
    if n < 1:
        raise MeterError(f"vcpus must be >= 1, got {vcpus!r}")
    name = cpu_model if cpu_model is not None else read_cpu_model(cpuinfo)
    row = match_cpu(name, load_cpu_table(table)) if name else None
    if tdp_watts is not None:
        threads = cpu_threads or (row.threads if row else n)
        max_w = tdp_watts / threads
        return TdpModel(name, "tdp_watts", n, idle_fraction * max_w, max_w, idle_fraction,
                        row, float(tdp_watts), threads, "tdp_watts given by the caller")
    if row is not None:
        max_w = row.watts_per_thread
        return TdpModel(name, "table", n, idle_fraction * max_w, max_w, idle_fraction,
                        row, row.tdp_w, row.threads, row.source)
    return TdpModel(
        name, "fallback", n, CCF_IDLE_W_PER_VCPU, CCF_MAX_W_PER_VCPU,
        CCF_IDLE_W_PER_VCPU / CCF_MAX_W_PER_VCPU, None, None, None,
        f"CPU {name!r} not in the CPU power table: Cloud Carbon Footprint AWS averages "
        f"({CCF_IDLE_W_PER_VCPU} W idle, {CCF_MAX_W_PER_VCPU} W max per vCPU); "
        f"pass tdp_watts to use your CPU's TDP",
    )


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
        cpu_seconds: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``scope``: ``"host"`` or ``"process"``. ``pids`` (process scope): an int root pid
        (instead of this process), or pids / a callable returning pids whose trees are added
        to this process's (``include_self=False`` leaves this process out). ``cpu_seconds``
        replaces the busy-CPU source (tests), ``clock`` the monotonic clock.
        """
        super().__init__()
        if scope not in SCOPES:
            raise MeterError(f"scope must be one of {SCOPES}, got {scope!r}")
        if not interval_s > 0:
            raise MeterError(f"interval_s must be > 0, got {interval_s!r}")
        self.scope = scope
        self.model = resolve_model(tdp_watts=tdp_watts, cpu_model=cpu_model,
                                   cpu_threads=cpu_threads, vcpus=vcpus,
                                   idle_fraction=idle_fraction, cpuinfo=cpuinfo, table=table)
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
                "table") if k in options})
            psutil.cpu_times()
        except (MeterError, OSError, ValueError) as exc:
            return Probe(False, str(exc), MODELLED, [])
        return Probe(True, None, MODELLED, [DOMAIN])
