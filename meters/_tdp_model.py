"""The constants of the tdp model for one host, and where each came from.

Why per vCPU: a VM or a function sees only some of the CPU, so the model
prices one vCPU at full load and at idle and multiplies by the vCPUs used::

    P_max  = TDP / units                 W per vCPU at 100 % busy
    P_idle = IDLE_FRACTION × P_max       W per vCPU when idle

``units`` is how many vCPUs of this kind the whole CPU has: its hardware
threads when a vCPU is a thread (SMT on: ``siblings`` > ``cpu cores`` in
``/proc/cpuinfo``), its cores when a vCPU is a whole core (SMT off, or a
cloud VM with one thread per core: ``siblings`` == ``cpu cores``). Dividing
by threads there would halve the power of every vCPU. When cpuinfo does not
say (arm64, or unreadable), a vCPU is taken to be a thread, as on the clouds'
default x86 instances, and the basis says so.

How many threads (or cores) the *package* has comes from the table row, else
from the model name where it states the cores ("AMD Ryzen 9 5950X 16-Core
Processor": cores only — whether SMT doubles them is the table's to say),
else from this host's cpuinfo (``siblings`` / ``cpu cores`` per socket) but
only on bare metal: a VM (``hypervisor`` flag) shows its own vCPUs, and a
280 W part divided by 2 vCPUs would charge 140 W per vCPU. A TDP whose
package size stays unknown falls back per vCPU (below), never above
TDP ÷ (2 × cores) where the name gives the cores, and the source says why.

Precedence, for the TDP and the divisor separately: arguments
(``tdp_watts``, ``cpu_threads``) > environment (:data:`TDP_WATTS_ENV`,
:data:`CPU_THREADS_ENV`) > the CPU power table row matching the CPU's
``model name`` (``meters/cpu_power.csv``). ``cpu_threads`` is the number of
vCPU-sized units the TDP is spread over, so ``tdp_watts=W, cpu_threads=N``
prices a vCPU at W/N. With a TDP from an override and no divisor anywhere,
the host's vCPU count stands in (the host is taken to see the whole CPU).

An unknown CPU without an override falls back to Cloud Carbon Footprint's
AWS averages, :data:`CCF_IDLE_W_PER_VCPU` = 0.74 W and
:data:`CCF_MAX_W_PER_VCPU` = 3.5 W per vCPU
(https://www.cloudcarbonfootprint.org/docs/methodology/). Those averages are
per hardware thread (an AWS vCPU), so a whole-core vCPU counts as
:data:`THREADS_PER_CORE` = 2 of them (x86 SMT is two-way).
:data:`IDLE_FRACTION` is the ratio of the two averages, 0.74 / 3.5 ≈ 0.21.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from meters._base import MeterError
from meters._cpu_names import cores_in_name
from meters._cpu_table import CpuPowerRow, explain_match, load_cpu_table
from meters._cpuinfo import CpuInfo, arm_core_name, read_cpuinfo

#: Cloud Carbon Footprint's AWS average watts per vCPU (one hardware thread) idle and at full load.
CCF_IDLE_W_PER_VCPU = 0.74
CCF_MAX_W_PER_VCPU = 3.5
#: Idle power as a fraction of full-load power (CCF's AWS ratio).
IDLE_FRACTION = CCF_IDLE_W_PER_VCPU / CCF_MAX_W_PER_VCPU
#: Hardware threads in one core when SMT is on (x86 SMT is two-way).
THREADS_PER_CORE = 2
TDP_WATTS_ENV = "RAYJOULE_TDP_WATTS"
CPU_THREADS_ENV = "RAYJOULE_CPU_THREADS"
CURVE = ("P(u) = N*P_idle + u*N*(P_max - P_idle); P_max = TDP/units per vCPU, "
         "P_idle = idle_fraction*P_max; E = N*P_idle*dt + busy_cpu_s*(P_max - P_idle)")


@dataclass(frozen=True)
class TdpModel:
    """The constants of the curve for one host, and where they came from.

    ``basis`` is ``"table"``, ``"override"`` (a TDP or divisor from arguments
    or environment) or ``"fallback"``; ``threads`` is the divisor of the TDP
    (``units`` in the module docstring) and ``vcpu_unit`` what one vCPU is
    (``"thread"`` or ``"core"``).
    """

    cpu_model: str | None
    basis: str
    vcpus: int
    idle_w_per_vcpu: float
    max_w_per_vcpu: float
    idle_fraction: float
    row: CpuPowerRow | None
    tdp_w: float | None
    threads: int | None
    source: str
    smt: bool | None = None
    vcpu_unit: str = "thread"
    origins: dict[str, str] = field(default_factory=dict)
    #: the match rule and the key that chose ``row`` (None: no row matched)
    rule: str | None = None

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
        """JSON-safe: every constant, where it came from, and the curve."""
        d = asdict(self)
        d["row"] = asdict(self.row) if self.row else None
        d.update(idle_watts=self.idle_watts, max_watts=self.max_watts,
                 watts_per_vcpu=self.max_w_per_vcpu, curve=CURVE)
        return d


def _env_number(env: Mapping[str, str], name: str, kind: type[float] | type[int]) -> Any:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        unit = "watts" if kind is float else "a whole number"
        raise MeterError(f"{name}={raw!r} is not {unit}; unset it or give e.g. "
                         f"{name}={'205' if kind is float else '56'}") from None


def _read_info(cpuinfo: str | os.PathLike[str] | None) -> tuple[CpuInfo | None, str | None]:
    try:
        return read_cpuinfo(cpuinfo), None
    except OSError as exc:
        return None, f"cpuinfo unreadable ({exc})"


def resolve_model(
    *,
    tdp_watts: float | None = None,
    cpu_model: str | None = None,
    cpu_threads: int | None = None,
    vcpus: int | None = None,
    idle_fraction: float = IDLE_FRACTION,
    cpuinfo: str | os.PathLike[str] | None = None,
    table: str | os.PathLike[str] | None = None,
    smt: bool | None = None,
    env: Mapping[str, str] | None = None,
) -> TdpModel:
    """Work out the curve's constants for this host (see the module docstring).

    ``smt`` overrides what cpuinfo says (True: a vCPU is a hardware thread);
    ``env`` replaces :data:`os.environ` (tests).

    >>> m = resolve_model(tdp_watts=100.0, cpu_threads=50, vcpus=4, env={})
    >>> m.basis, m.max_w_per_vcpu, m.origins["tdp_w"]
    ('override', 2.0, 'argument tdp_watts')
    """
    environ = os.environ if env is None else env
    if tdp_watts is None:
        tdp_watts = _env_number(environ, TDP_WATTS_ENV, float)
        tdp_origin = f"environment {TDP_WATTS_ENV}"
    else:
        tdp_origin = "argument tdp_watts"
    if cpu_threads is None:
        cpu_threads = _env_number(environ, CPU_THREADS_ENV, int)
        threads_origin = f"environment {CPU_THREADS_ENV}"
    else:
        threads_origin = "argument cpu_threads"
    if tdp_watts is not None and not (math.isfinite(tdp_watts) and tdp_watts > 0):
        # inf passed a bare > 0 and modelled every host at inf W
        raise MeterError(f"tdp_watts must be > 0 W and finite, got {tdp_watts!r} "
                         f"({tdp_origin})")
    if cpu_threads is not None and cpu_threads < 1:
        raise MeterError(f"cpu_threads must be >= 1, got {cpu_threads!r} ({threads_origin})")
    if not 0.0 <= idle_fraction < 1.0:
        raise MeterError(f"idle_fraction must be in [0, 1), got {idle_fraction!r}")
    n = int(vcpus if vcpus is not None else (psutil.cpu_count(logical=True) or 1))
    if n < 1:
        raise MeterError(f"vcpus must be >= 1, got {vcpus!r}")

    info, info_error = _read_info(cpuinfo)
    name = cpu_model if cpu_model is not None else (info.model if info else None)
    if smt is not None:
        smt_origin = "argument smt"
    elif info is not None and info.smt is not None:
        smt = info.smt
        smt_origin = (f"{info.source}: siblings {info.siblings} vs cpu cores "
                      f"{info.cores_per_socket}" if info.siblings is not None
                      else f"{info.source}: {info.logical} logical CPUs on {info.cores} cores")
    else:
        smt_origin = (f"unknown ({info_error or 'cpuinfo shows no CPU topology'}): "
                      f"a vCPU is taken to be a hardware thread")
    unit = "core" if smt is False else "thread"
    own_name = cpu_model is None and info is not None and info.model is not None
    match = explain_match(name, load_cpu_table(table)) if name else None
    row = match.row if match is not None else None
    if match is not None:
        table_why = match.reason
    elif info is not None and info.arm_part is not None:
        table_why = (f"arm64 cpuinfo prints no model name, only "
                     f"{arm_core_name(info.arm_implementer, info.arm_part)}: a core design "
                     f"does not give a package's TDP, so the table is not consulted")
    else:
        table_why = f"no CPU model name ({info_error or 'cpuinfo names none'})"
    origins = {"cpu_model": "argument cpu_model" if cpu_model is not None
               else (info.source if info and info.model else "unknown"), "smt": smt_origin}
    rule = match.rule if match is not None else None

    tdp = tdp_watts
    if tdp is None and row is not None:
        tdp, tdp_origin = row.tdp_w, f"table row {row.model}"
    ignored = (f"; cpu_threads={cpu_threads} ({threads_origin}) is unused without a TDP"
               if cpu_threads is not None and tdp is None else "")
    if tdp is None:
        return _fallback(name, n, unit, smt, origins, rule,
                         f"CPU {name!r} not in the CPU power table ({table_why}){ignored}")
    if cpu_threads is not None:
        units: int | None = cpu_threads
    else:
        units, threads_origin = _package_units(row, unit, name, info, own_name)
        if units is None and tdp_watts is not None:
            units, threads_origin = n, "the host's vCPUs (taken to see the whole CPU)"
        if units is None:
            assert row is not None
            return _fallback(name, n, unit, smt, origins, rule,
                             f"table row {row.model!r} gives {row.tdp_w:g} W ({row.source}) "
                             f"but {threads_origin}", tdp=row.tdp_w, row=row,
                             named_cores=cores_in_name(name) if name else None)
    origins.update(tdp_w=tdp_origin, threads=threads_origin)
    overridden = tdp_watts is not None or cpu_threads is not None
    max_w = tdp / units
    source = (row.source if row is not None and not overridden
              else f"TDP {tdp:g} W ({origins['tdp_w']}) / {units} ({threads_origin})")
    return TdpModel(name, "override" if overridden else "table", n, idle_fraction * max_w,
                    max_w, idle_fraction, row, float(tdp), units, source, smt, unit, origins,
                    rule)


def _package_units(row: CpuPowerRow | None, unit: str, name: str | None,
                   info: CpuInfo | None, own_name: bool) -> tuple[int | None, str]:
    """How many vCPU-sized units (threads or cores) the package has, and where that came from.

    The table row first, then the name ("16-Core", cores only), then this
    host's cpuinfo — only for its own model name and only on bare metal (no
    ``hypervisor`` flag): a VM's cpuinfo shows its vCPUs, not the package.
    """
    attr = "cores" if unit == "core" else "threads"
    if row is not None and getattr(row, attr) is not None:
        return getattr(row, attr), f"table row {row.model}: {attr}"
    named = cores_in_name(name) if name else None
    if unit == "core" and named is not None:
        return named, f"the model name: {named} cores"
    field_name = "cpu cores" if unit == "core" else "siblings"
    per_package = (info.cores_per_socket if unit == "core" else info.siblings) if info else None
    if own_name and info is not None and info.hypervisor is False and per_package:
        return per_package, (f"{info.source}: {field_name} {per_package} per package (bare "
                             f"metal: no hypervisor flag)")
    if not own_name:
        where = "the CPU was named by argument, so this host's cpuinfo says nothing about it"
    elif info is not None and info.hypervisor:
        where = ("this is a VM (hypervisor flag): its cpuinfo shows its own vCPUs, "
                 "not the package's")
    else:
        where = "cpuinfo does not show bare metal (no flags line)"
    return None, (f"the package's {attr} are unknown: the table row gives none, the name "
                  f"states none, and {where}")


def _fallback(name: str | None, n: int, unit: str, smt: bool | None, origins: dict[str, str],
              rule: str | None, why: str, *, tdp: float | None = None,
              row: CpuPowerRow | None = None, named_cores: int | None = None) -> TdpModel:
    """CCF's per-vCPU averages; with a known TDP, never more than TDP ÷ (2 × named cores)."""
    per = THREADS_PER_CORE if unit == "core" else 1
    max_w = per * CCF_MAX_W_PER_VCPU
    note = f"; a whole-core vCPU counts as {THREADS_PER_CORE} threads" if per > 1 else ""
    if tdp is not None and named_cores:
        ceiling = tdp * per / (THREADS_PER_CORE * named_cores)
        if ceiling < max_w:
            max_w = ceiling
            note += (f"; capped at {tdp:g} W / ({THREADS_PER_CORE} x {named_cores} cores) per "
                     f"thread, as x86 runs at most {THREADS_PER_CORE} threads per core")
    origins.update(tdp_w="none" if tdp is None else f"table row {row.model if row else '?'}",
                   threads="none")
    ratio = CCF_IDLE_W_PER_VCPU / CCF_MAX_W_PER_VCPU
    return TdpModel(
        name, "fallback", n, ratio * max_w, max_w, ratio, row, tdp, None,
        f"{why}: Cloud Carbon Footprint AWS averages ({CCF_IDLE_W_PER_VCPU} W idle, "
        f"{CCF_MAX_W_PER_VCPU} W max per hardware thread{note}); pass tdp_watts and "
        f"cpu_threads (or set {TDP_WATTS_ENV} and {CPU_THREADS_ENV}) to use your CPU's figures",
        smt, unit, origins, rule,
    )
