"""Die zones of one package: do they mirror one counter (count once) or own one each (add up)?

The kernel keeps one RAPL "package" per die (``topology_logical_die_id``)
and names it ``package-X-die-Y`` when a package has several dies
(``rapl_add_package`` in ``drivers/powercap/intel_rapl_common.c``). On Intel parts with die
enumeration (Cascade Lake-AP: 2 dies per package) each die has its *own*
package energy counter, so die zones must be added up. AMD and Hygon parts
have one package energy MSR per *socket*; since kernel commit 63edbaa48a57
("x86/cpu/topology: Add support for the AMD 0x80000026 leaf") reports each
CCD as a die, affected kernels show one ``package-X-die-Y`` zone per CCD that
all read the same per-socket MSR (a 2-socket, 8-CCD Zen 4 server lists
``intel-rapl:0`` … ``intel-rapl:f``), and adding them multiplies package
energy by the number of CCDs. The kernel's own fix ("powercap/intel_rapl:
Fix the energy-pkg event for AMD CPUs", ``rapl_msrs_are_pkg_scope()``) states
the rule: *AMD/Hygon package energy counters are per package; Intel MSR
counters are per die*. This module applies that rule, in this order:

1. ``die_counters="per-package"`` or ``"per-die"`` given by the caller wins;
2. else the CPU vendor (``vendor_id`` in ``/proc/cpuinfo``, see
   :mod:`meters._cpuinfo`): AuthenticAMD / HygonGenuine → per package,
   GenuineIntel → per die;
3. else (vendor unknown: cpuinfo unreadable) the counters decide: the die
   zones of one package are read twice in a row; mirrors of one counter read
   (almost) the same value, differing at most by what the counter advanced
   while they were read, whereas independent counters differ by the energy
   each die used since boot (kilojoules). A spread within one pass no larger
   than twice the largest advance between the passes means one shared
   counter. Why the vendor comes first: it is the kernel's own rule and
   needs no luck, whereas a shared counter that wraps between two reads of
   one pass would look like two counters (a chance of about one pass time in
   one wrap period, microseconds in minutes).

The same happens to ``perf``'s ``power`` PMU (``arch/x86/events/rapl.c``,
"perf/x86/rapl: Fix the energy-pkg event for AMD CPUs"): on affected
kernels its ``cpumask`` lists one CPU per CCD (``0,8,16,…`` on a 12-CCD
Genoa instead of ``0``), and ``perf stat -a`` adds the package counter up
once per listed CPU. :func:`perf_package_cpus` therefore picks one CPU per
socket from that cpumask on AMD/Hygon, for ``perf stat -a -C <cpus>``.

Per package: the die zone with the lowest die index is read as
``package-X`` and counted; the other die zones of that package are not read
at all (listed as mirrors in the meter's basis). Their subzones (on AMD the
``core`` zone of each CCD's lead CPU) stay as informational domains and are
never in the total. Per die: every die zone and its DRAM are counted.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meters._cpuinfo import AMD, HYGON, INTEL, CpuInfo, read_cpuinfo

#: Ways to treat the die zones of one package (see the module docstring).
DIE_COUNTERS = ("auto", "per-package", "per-die")
#: Vendors whose package energy MSR is per socket (the kernel's rapl_msrs_are_pkg_scope()).
PER_PACKAGE_VENDORS = (AMD, HYGON)


@dataclass(frozen=True)
class DieRule:
    """How the die zones were treated: ``scope`` per package or per die, and why."""

    scope: str | None  # "per-package", "per-die", "mixed", or None without die zones
    decided_by: str  # "no die zones", "argument", "vendor" or "counters"
    vendor: str | None
    reason: str
    mirrors: dict[str, list[str]] = field(default_factory=dict)  # domain -> skipped zone ids

    def to_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "decided_by": self.decided_by, "vendor": self.vendor,
                "reason": self.reason, "mirrors": {k: list(v) for k, v in self.mirrors.items()}}


def counters_shared(energy_paths: list[Path], read_uj: Callable[[Path], int]) -> bool:
    """Do these die zones read one shared counter? Two passes over their ``energy_uj``.

    >>> values = {"a": iter([500, 510]), "b": iter([505, 512])}   # one counter, moving
    >>> counters_shared([Path("a"), Path("b")], lambda p: next(values[p.name]))
    True
    >>> values = {"a": iter([500, 510]), "b": iter([9_000_500, 9_000_512])}
    >>> counters_shared([Path("a"), Path("b")], lambda p: next(values[p.name]))
    False
    """
    first = [read_uj(p) for p in energy_paths]
    second = [read_uj(p) for p in energy_paths]
    moved = max(max(b - a, 0) for a, b in zip(first, second, strict=True))
    spread = max(first) - min(first)
    return spread <= 2 * moved


def decide_die_scope(
    groups: dict[int, list[Path]],
    die_counters: str,
    read_uj: Callable[[Path], int],
    cpuinfo: str | os.PathLike[str] | None,
) -> tuple[DieRule, dict[int, bool]]:
    """The rule for the sockets with several die zones (socket -> their ``energy_uj`` paths,
    in die order), and per socket whether its die zones mirror one counter."""
    if not groups:
        return DieRule(None, "no die zones", None, "no package has several die zones"), {}
    if die_counters != "auto":
        shared = die_counters == "per-package"
        return (DieRule(die_counters, "argument", None, f"die_counters={die_counters!r}"),
                dict.fromkeys(groups, shared))
    try:
        vendor = read_cpuinfo(cpuinfo).vendor
        why_unknown = "cpuinfo names no vendor_id"
    except OSError as exc:
        vendor, why_unknown = None, f"cpuinfo unreadable ({exc})"
    if vendor in PER_PACKAGE_VENDORS:
        return (DieRule("per-package", "vendor", vendor,
                        f"{vendor}: the package energy MSR is per socket; the die zones mirror "
                        f"it (kernel rapl_msrs_are_pkg_scope)"), dict.fromkeys(groups, True))
    if vendor == INTEL:
        return (DieRule("per-die", "vendor", vendor,
                        f"{vendor}: each die has its own package energy counter "
                        f"(e.g. Cascade Lake-AP)"), dict.fromkeys(groups, False))
    shared = {socket: counters_shared(paths, read_uj) for socket, paths in groups.items()}
    scope = ("per-package" if all(shared.values())
             else "per-die" if not any(shared.values()) else "mixed")
    reason = (f"vendor {vendor!r} unknown ({why_unknown}): die zones of one package that read "
              f"the same counter value are mirrors")
    return DieRule(scope, "counters", vendor, reason), shared


def parse_cpulist(text: str) -> list[int]:
    """A sysfs CPU list (``"0,8,16-18"``) as CPU numbers.

    >>> parse_cpulist("0,8,16-18\\n")
    [0, 8, 16, 17, 18]
    """
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def perf_package_cpus(cpumask: Path, info: CpuInfo | None) -> tuple[list[int] | None, str]:
    """CPUs for ``perf stat -a -C`` so that a per-socket counter is read once per socket.

    Returns ``(None, why)`` when perf's own choice is right (or cannot be judged):
    no cpumask, a vendor whose counters are per die, or one listed CPU per socket.
    """
    try:
        listed = parse_cpulist(cpumask.read_text())
    except (OSError, ValueError) as exc:
        return None, f"no usable power PMU cpumask ({exc}): perf's default CPUs"
    if info is None or info.vendor is None:
        return None, (f"vendor unknown: perf counts every CPU of {cpumask} "
                      f"({','.join(map(str, listed))})")
    if info.vendor not in PER_PACKAGE_VENDORS:
        return None, f"{info.vendor}: one energy counter per die, as perf's cpumask lists"
    package_of = dict(info.package_of)
    first: dict[int, int] = {}
    for cpu in listed:
        first.setdefault(package_of.get(cpu, -1 - cpu), cpu)  # unknown socket: keep the CPU
    if len(first) == len(listed):
        return None, f"{info.vendor}: the cpumask already lists one CPU per socket"
    cpus = sorted(first.values())
    return cpus, (f"{info.vendor}: the package energy counter is per socket but the power "
                  f"PMU lists {len(listed)} CPUs (one per die); counting on {cpus} only")
