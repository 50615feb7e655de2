"""Find the RAPL zones of a Linux powercap tree, name them, and decide which ones the total counts.

Layout (``Documentation/power/powercap/powercap.rst``, ``drivers/powercap/powercap_sys.c``):
a driver registers a *control type* (``intel-rapl`` for the MSR interface,
used on AMD and Hygon too; ``intel-rapl-mmio`` for the MMIO interface of
client parts; some tools also look for ``amd-rapl``, accepted here with the
same layout) and its zones. A zone's folder is named
``"%s:%x" % (parent, id)``: the id is **hexadecimal** and allocated in
registration order (CPU hotplug order), so a 16-socket or multi-die host has
``intel-rapl:a`` … ``intel-rapl:f`` and subzones ``intel-rapl:a:0``, and the
directory id says nothing about the socket. Each zone has ``name``,
``energy_uj`` and ``max_energy_range_uj``. Linux shows each zone twice: as a
flat link in ``/sys/class/powercap`` and nested under its parent zone's
folder. Zones are keyed by zone id (unique in the tree) and real path, and
each is counted once.

Naming and order come from each zone's ``name`` file, never from its id:
top-level zones are ``package-<socket>``, or ``package-<socket>-die-<die>``
when the kernel sees several dies per package (``rapl_add_package`` in
``drivers/powercap/intel_rapl_common.c``), and ``psys``. A subzone (``core``,
``uncore``, ``dram``) takes its parent's suffix: ``dram`` under
``package-10`` is ``dram-10``, ``core`` under ``package-1-die-0`` is
``core-1-die-0``. Zones sort by socket, then die, then subzone id.

One counter, one count. The same package seen through several control types
(``intel-rapl-mmio:0`` repeats ``intel-rapl:0``) is taken once, from the MSR
interface. The total is packages + DRAM, or psys alone when psys exists
(core and uncore are inside their package; psys covers the whole SoC).

Die zones (``package-X-die-Y``) count once per package when they mirror one
per-socket counter (AMD, Hygon) and once per die when each die has its own
(Intel Cascade Lake-AP); :mod:`meters._dies` decides which, and why.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from meters._base import MeterError, MeterUnavailable
from meters._dies import DIE_COUNTERS, DieRule, decide_die_scope

log = logging.getLogger(__name__)

POWERCAP_ROOT_ENV = "RAYJOULE_POWERCAP_ROOT"
DEFAULT_POWERCAP_ROOT = "/sys/class/powercap"
#: Worst-case power of one zone used to bound the sampling interval (generous on purpose).
WORST_CASE_W = 1000.0

_CONTROL = r"[a-z][a-z0-9-]*rapl[a-z0-9-]*"
_CONTROL_RE = re.compile(rf"^{_CONTROL}$")
_ZONE_RE = re.compile(rf"^({_CONTROL}):([0-9a-f]+(?::[0-9a-f]+)*)$")
_PACKAGE_RE = re.compile(r"^package-(\d+)(?:-die-(\d+))?$")
_SUFFIXED_RE = re.compile(r"-\d+$")

Reader = Callable[[Path], str]


def read_text(path: Path) -> str:
    """Default reader: the whole file as text (sysfs files are tiny)."""
    with open(path, "rb") as f:
        return f.read().decode("ascii", errors="replace")


def powercap_root(root: str | os.PathLike[str] | None = None) -> Path:
    """``root``, else ``$RAYJOULE_POWERCAP_ROOT``, else ``/sys/class/powercap``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(POWERCAP_ROOT_ENV) or DEFAULT_POWERCAP_ROOT)


@dataclass(frozen=True)
class RaplZone:
    """One RAPL zone as discovered in the powercap tree."""

    zone_id: str  # folder name, e.g. "intel-rapl:a:1"
    control: str  # "intel-rapl" (MSR), "intel-rapl-mmio", ...
    path: Path
    domain: str  # e.g. "core-10"
    in_total: bool  # counted in the total (packages + dram, or psys)
    max_range_uj: int
    worst_case_w: float
    name: str = ""  # contents of the zone's name file

    @property
    def energy_path(self) -> Path:
        return self.path / "energy_uj"

    @property
    def wrap_s(self) -> float:
        """Seconds for one full wrap at the worst-case power."""
        return (self.max_range_uj + 1) / (self.worst_case_w * 1e6)

    def to_dict(self) -> dict[str, Any]:
        return {"zone_id": self.zone_id, "name": self.name, "domain": self.domain,
                "in_total": self.in_total, "max_range_uj": self.max_range_uj,
                "path": str(self.path)}


@dataclass(frozen=True)
class PowercapScan:
    """Everything :func:`scan_powercap` found: the zones to read, and what it left out and why."""

    root: Path
    zones: list[RaplZone]
    die_rule: DieRule
    skipped: dict[str, str]  # zone id -> why it is not read


@dataclass
class _Node:
    zone_id: str
    control: str
    ids: tuple[int, ...]
    path: Path
    name: str
    children: list[_Node] = field(default_factory=list)

    @property
    def parent_id(self) -> str | None:
        if len(self.ids) == 1:
            return None
        return f"{self.control}:" + ":".join(f"{i:x}" for i in self.ids[:-1])


def _control_rank(control: str) -> int:
    """MSR first, then other RAPL interfaces, MMIO last: a duplicate is read from the first."""
    return {"intel-rapl": 0, "amd-rapl": 1, "intel-rapl-mmio": 3}.get(control, 2)


def _find_zone_dirs(root: Path) -> dict[str, Path]:
    """Zone id -> folder, each zone once, from the flat links and the nested folders."""
    found: dict[str, Path] = {}
    seen_real: set[str] = set()

    def visit(folder: Path, depth: int) -> None:
        if depth > 6:
            return
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            log.debug("cannot list %s: %s", folder, exc)
            return
        for entry in entries:
            if _ZONE_RE.match(entry.name):
                if not entry.is_dir():  # follows symlinks; a dangling link is skipped
                    continue
                real = os.path.realpath(entry.path)
                if entry.name not in found and real not in seen_real:
                    found[entry.name] = Path(entry.path)
                seen_real.add(real)
                visit(Path(entry.path), depth + 1)
            elif _CONTROL_RE.match(entry.name) and entry.is_dir():
                visit(Path(entry.path), depth + 1)  # control-type folder holding the zones

    visit(root, 0)
    return found


def _worst_case_w(zone_dir: Path, reader: Reader, max_power_w: float | None) -> float:
    if max_power_w is not None:
        return float(max_power_w)
    worst = WORST_CASE_W
    for p in zone_dir.glob("constraint_*_max_power_uw"):
        try:
            worst = max(worst, 2.0 * int(reader(p).strip()) / 1e6)
        except (OSError, ValueError) as exc:  # an optional hint: the default bound still holds
            log.debug("ignoring %s: %s", p, exc)
    return worst


def _package_key(name: str) -> tuple[int, int, int]:
    """Sort key of a top-level zone name: packages by socket and die, then psys, then others."""
    m = _PACKAGE_RE.match(name)
    if m:
        return 0, int(m.group(1)), int(m.group(2) or 0)
    return (1 if name.startswith("psys") else 2), 0, 0


def _read_uj(path: Path, reader: Reader) -> int:
    try:
        return int(reader(path).strip())
    except (OSError, ValueError) as exc:
        raise MeterUnavailable(f"cannot read {path}: {exc}") from exc


def _nodes(base: Path, reader: Reader) -> tuple[list[_Node], dict[str, str]]:
    """The top-level zones (with their subzones), and the subzones whose parent is missing."""
    dirs = _find_zone_dirs(base)
    if not dirs:
        raise MeterUnavailable(
            f"no intel-rapl zones under {base}: load the RAPL driver "
            f"(`sudo modprobe intel_rapl_msr`) on a host whose CPU has RAPL (Intel, AMD Zen)"
        )
    nodes: dict[str, _Node] = {}
    for zone_id, folder in dirs.items():
        m = _ZONE_RE.match(zone_id)
        assert m is not None
        try:
            name = reader(folder / "name").strip()
        except OSError as exc:
            raise MeterUnavailable(f"cannot read {folder / 'name'}: {exc}") from exc
        ids = tuple(int(p, 16) for p in m.group(2).split(":"))
        nodes[zone_id] = _Node(zone_id, m.group(1), ids, folder, name)
    tops: list[_Node] = []
    orphans: dict[str, str] = {}
    for node in nodes.values():
        parent = nodes.get(node.parent_id) if node.parent_id else None
        if node.parent_id is None:
            tops.append(node)
        elif parent is not None:
            parent.children.append(node)
        else:  # a part of an unknown package cannot be placed in (or out of) the total
            orphans[node.zone_id] = f"its parent zone {node.parent_id} is not in the tree"
    for node in nodes.values():
        node.children.sort(key=lambda n: n.ids)
    return tops, orphans


def scan_powercap(
    root: str | os.PathLike[str] | None = None,
    *,
    reader: Reader = read_text,
    max_power_w: float | None = None,
    die_counters: str = "auto",
    cpuinfo: str | os.PathLike[str] | None = None,
) -> PowercapScan:
    """Every RAPL zone under ``root``, deduplicated, named, sorted, with the total's rule.

    Reads ``energy_uj`` only when the die rule must compare counters. Raises
    :class:`MeterUnavailable` when there is no zone or a zone is malformed.
    """
    if die_counters not in DIE_COUNTERS:
        raise MeterError(f"die_counters must be one of {DIE_COUNTERS}, got {die_counters!r}")
    base = powercap_root(root)
    if not base.is_dir():
        raise MeterUnavailable(
            f"no powercap tree at {base}: this host exposes no RAPL counters (a VM, a non-x86 "
            f"CPU, or the intel_rapl_msr / rapl kernel module is not loaded: "
            f"`sudo modprobe intel_rapl_msr`); set {POWERCAP_ROOT_ENV} to use another root"
        )
    top_nodes, skipped = _nodes(base, reader)

    # One zone per top-level name: a package seen through MSR and MMIO is read from MSR.
    chosen: dict[str, _Node] = {}
    for node in sorted(top_nodes, key=lambda n: (_control_rank(n.control), n.ids)):
        kept = chosen.get(node.name)
        if kept is not None and kept.control != node.control:
            skipped[node.zone_id] = f"{node.name} is read through {kept.zone_id}"
            for child in node.children:
                skipped[child.zone_id] = f"inside {node.zone_id}, which is not read"
            continue
        chosen[node.zone_id if kept is not None else node.name] = node
    tops = sorted(chosen.values(),
                  key=lambda n: (_package_key(n.name), _control_rank(n.control), n.ids))

    groups: dict[int, list[_Node]] = {}
    for node in tops:
        m = _PACKAGE_RE.match(node.name)
        if m and m.group(2) is not None:
            groups.setdefault(int(m.group(1)), []).append(node)
    groups = {s: dies for s, dies in groups.items() if len(dies) > 1}
    rule, shared = decide_die_scope(
        {s: [n.path / "energy_uj" for n in dies] for s, dies in groups.items()},
        die_counters, lambda path: _read_uj(path, reader), cpuinfo)
    mirror_of: dict[str, str] = {}  # zone id of a mirror -> domain that reads the counter
    lead_domain: dict[str, str] = {}  # zone id of the die zone read as its package
    mirrors: dict[str, list[str]] = {}
    for socket, dies in groups.items():
        if shared[socket]:
            lead, *rest = dies  # sorted by die index
            lead_domain[lead.zone_id] = f"package-{socket}"
            mirrors[f"package-{socket}"] = [n.zone_id for n in rest]
            mirror_of.update((n.zone_id, f"package-{socket}") for n in rest)
    rule = replace(rule, mirrors=mirrors)

    zones: list[RaplZone] = []
    taken: set[str] = set()

    def add(node: _Node, domain: str, in_total: bool) -> None:
        if domain in taken:
            domain = f"{domain}@{node.zone_id}"
        taken.add(domain)
        try:
            max_range = int(reader(node.path / "max_energy_range_uj").strip())
        except (OSError, ValueError) as exc:
            raise MeterUnavailable(
                f"cannot read {node.path / 'max_energy_range_uj'} ({exc}): without the counter "
                f"range the meter cannot handle wraparound"
            ) from exc
        if max_range <= 0:
            raise MeterUnavailable(f"{node.path / 'max_energy_range_uj'} is {max_range}, not > 0")
        zones.append(RaplZone(node.zone_id, node.control, node.path, domain, in_total,
                              max_range, _worst_case_w(node.path, reader, max_power_w), node.name))

    for node in tops:
        mirrored = node.zone_id in mirror_of
        if mirrored:
            skipped[node.zone_id] = (f"{node.name} mirrors the counter read as "
                                     f"{mirror_of[node.zone_id]}")
        else:
            add(node, lead_domain.get(node.zone_id, node.name), True)
        suffix = node.name[len("package-"):] if node.name.startswith("package-") else node.name
        for child in node.children:
            raw = child.name
            domain = raw if _SUFFIXED_RE.search(raw) or not suffix else f"{raw}-{suffix}"
            add(child, domain, raw.startswith("dram") and not mirrored)
    if any(z.name.startswith("psys") for z in zones):
        zones = [replace(z, in_total=z.name.startswith("psys")) for z in zones]
    return PowercapScan(base, zones, rule, skipped)


def discover_zones(
    root: str | os.PathLike[str] | None = None,
    *,
    reader: Reader = read_text,
    max_power_w: float | None = None,
    die_counters: str = "auto",
    cpuinfo: str | os.PathLike[str] | None = None,
) -> list[RaplZone]:
    """The zones :func:`scan_powercap` would read, in order (see the module docstring)."""
    return scan_powercap(root, reader=reader, max_power_w=max_power_w,
                         die_counters=die_counters, cpuinfo=cpuinfo).zones
