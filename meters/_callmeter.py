"""Meter one function call from inside it: for remote function platforms (Lithops on a cloud).

Why inside: on a serverless or remote-worker backend each call runs on a
machine no host meter watches, so the call must meter itself and send its
figure back with its result. It measures when it can and models otherwise,
and says which:

* ``"measured"``: RAPL is readable where the call runs (``$RAYJOULE_POWERCAP_ROOT``
  honoured): the machine's package + DRAM joules over the call. That is the
  whole machine's energy, other tenants' work included; the basis says so.
  There is no idle baseline inside a call, so no ``static_j`` is given.
* ``"modelled"``: the tdp model (:mod:`meters._tdp_model`) applied to the
  call's own resources, not the host's::

      E_cpu = V·P_idle·wall_s + min(cpu_s, V·wall_s)·(P_max − P_idle)
      E_mem = memory_gb · MEMORY_W_PER_GB · wall_s        (only with memory_mb)

  ``V`` is the call's vCPUs (``vcpus``; default: the CPUs this process may
  run on), ``cpu_s`` the process's own CPU time (:func:`time.process_time`,
  all threads) plus that of the children it reaped, and P_idle / P_max the
  per-vCPU watts of this CPU (table row, override or fallback, threads or
  cores as the unit). :data:`MEMORY_W_PER_GB` is Cloud Carbon Footprint's
  0.392 W per GB (https://www.cloudcarbonfootprint.org/docs/methodology/#memory).
  ``static_j`` is the idle vCPUs' part plus the memory's; ``dynamic_j`` the rest.

The result (:attr:`CallMeter.result`) is JSON-safe: ``energy_j``, ``kind``,
``meter``, ``basis`` (with ``model``, the method in words), ``wall_s``,
``cpu_s``, ``by_domain``, ``vcpus``, ``memory_mb``, ``host``
(:func:`meters.describe_host`), and, when modelled, ``static_j`` and ``dynamic_j``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from meters._base import MEASURED, MODELLED, MeterError, MeterUnavailable, Reading
from meters._host import describe_host
from meters._rapl import RaplMeter
from meters._tdp_model import TdpModel, resolve_model

log = logging.getLogger(__name__)

#: Cloud Carbon Footprint's memory coefficient: 0.392 W per GB (0.000392 kWh per GB-hour).
MEMORY_W_PER_GB = 0.392
MODEL_FORMULA = ("E = V*P_idle*wall_s + min(cpu_s, V*wall_s)*(P_max - P_idle) "
                 "+ memory_gb*MEMORY_W_PER_GB*wall_s")


def process_cpu_seconds() -> float:
    """CPU-seconds of this process (all threads) and of the children it has reaped."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


def _available_vcpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux: every CPU the OS reports
        return os.cpu_count() or 1


class CallMeter:
    """Meter the code inside ``with`` and leave a JSON-safe :attr:`result`.

    ``vcpus`` and ``memory_mb``: the resources the function was given (they
    drive the model; ``vcpus`` may be fractional). ``use_rapl=False`` skips
    RAPL. The remaining keywords go to the RAPL meter (``root``, ``cpuinfo``)
    and the tdp model (``tdp_watts``, ``cpu_threads``, ``cpuinfo``).
    ``clock`` and ``cpu_clock`` replace the monotonic clock and
    :func:`process_cpu_seconds` (tests).

    >>> with CallMeter(vcpus=1, memory_mb=1024, use_rapl=False) as cm:
    ...     _ = sum(i * i for i in range(10_000))
    >>> r = cm.result
    >>> r["kind"], r["meter"], r["energy_j"] > 0, sorted(r["by_domain"])
    ('modelled', 'tdp', True, ['cpu', 'memory'])
    """

    def __init__(
        self,
        vcpus: float | None = None,
        memory_mb: float | None = None,
        *,
        use_rapl: bool = True,
        root: str | os.PathLike[str] | None = None,
        cpuinfo: str | os.PathLike[str] | None = None,
        tdp_watts: float | None = None,
        cpu_threads: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = process_cpu_seconds,
    ) -> None:
        if vcpus is not None and not vcpus > 0:
            raise MeterError(f"vcpus must be > 0, got {vcpus!r}")
        if memory_mb is not None and not memory_mb >= 0:
            raise MeterError(f"memory_mb must be >= 0, got {memory_mb!r}")
        self.vcpus = float(vcpus) if vcpus is not None else float(_available_vcpus())
        self._vcpus_source = "argument" if vcpus is not None else "CPUs this process may use"
        self.memory_mb = memory_mb
        self._use_rapl = use_rapl
        self._root = root
        self._cpuinfo = cpuinfo
        self._tdp = {"tdp_watts": tdp_watts, "cpu_threads": cpu_threads}
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._rapl: RaplMeter | None = None
        self._r0: Reading | None = None
        self._model: TdpModel | None = None
        self._why_not_rapl: str | None = None
        self._t0: float | None = None
        self._c0 = 0.0
        self.result: dict[str, Any] | None = None

    def start(self) -> None:
        """Begin metering (``with`` calls it); a CallMeter meters one call."""
        if self._t0 is not None:
            raise MeterError("this CallMeter has already metered a call; create a new one")
        if self._use_rapl:
            try:
                self._rapl = RaplMeter(root=self._root, cpuinfo=self._cpuinfo)
                self._r0 = self._rapl.read()
            except MeterUnavailable as exc:
                self._why_not_rapl = exc.reason
                log.debug("call meter falls back to the tdp model: %s", exc.reason)
        else:
            self._why_not_rapl = "use_rapl=False"
        if self._rapl is None:
            self._model = resolve_model(vcpus=max(1, math.ceil(self.vcpus)),
                                        cpuinfo=self._cpuinfo, **self._tdp)
        self._c0 = self._cpu_clock()
        self._t0 = self._clock()

    def stop(self) -> dict[str, Any]:
        """End metering and return :attr:`result` (``with`` calls it, also on an exception)."""
        if self._t0 is None:
            raise MeterError("CallMeter.stop() before start()")
        if self.result is not None:
            return self.result
        wall_s = max(self._clock() - self._t0, 0.0)
        cpu_s = max(self._cpu_clock() - self._c0, 0.0)
        if self._rapl is not None:
            assert self._r0 is not None
            try:
                r1 = self._rapl.read()
                basis = {**self._rapl.basis, "scope": "host: the whole machine's RAPL energy "
                         "during the call, other work on it included"}
            finally:
                self._rapl.close()
            by_domain = r1.delta_j(self._r0)
            basis["model"] = ("measured: the machine's RAPL " + " + ".join(r1.total_domains)
                              + " over the call")
            split: dict[str, float] = {}  # no idle baseline inside a call: no static part
            energy_j, kind, meter = r1.total - self._r0.total, MEASURED, RaplMeter.name
        else:
            by_domain, basis, static_j = self._modelled(wall_s, cpu_s)
            energy_j, kind, meter = math.fsum(by_domain.values()), MODELLED, "tdp"
            split = {"static_j": static_j, "dynamic_j": energy_j - static_j}
        self.result = {
            "energy_j": energy_j, **split, "kind": kind, "meter": meter, "basis": basis,
            "wall_s": wall_s, "cpu_s": cpu_s, "by_domain": by_domain,
            "vcpus": self.vcpus, "memory_mb": self.memory_mb,
            "host": describe_host(self._cpuinfo),
        }
        return self.result

    def _modelled(self, wall_s: float,
                  cpu_s: float) -> tuple[dict[str, float], dict[str, Any], float]:
        """Joules per domain, the basis, and the static part (idle vCPUs and the memory)."""
        model = self._model
        assert model is not None
        v = self.vcpus
        busy = min(cpu_s, v * wall_s)
        static_j = v * model.idle_w_per_vcpu * wall_s
        by_domain = {"cpu": static_j + busy * model.dynamic_w_per_vcpu}
        if self.memory_mb is not None:
            by_domain["memory"] = self.memory_mb / 1024 * MEMORY_W_PER_GB * wall_s
            static_j += by_domain["memory"]
        basis = {
            **model.describe(), "meter": "tdp", "kind": MODELLED, "scope": "call",
            "model": f"modelled ({model.basis}): {MODEL_FORMULA}",
            "vcpus": v, "vcpus_source": self._vcpus_source,
            "idle_watts": v * model.idle_w_per_vcpu, "max_watts": v * model.max_w_per_vcpu,
            "memory_mb": self.memory_mb,
            "memory_w_per_gb": MEMORY_W_PER_GB if self.memory_mb is not None else None,
            "formula": MODEL_FORMULA, "busy_cpu_s": busy,
            "rapl_unavailable": self._why_not_rapl,
        }
        return by_domain, basis, static_j

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
