"""RAPL energy counters through Linux powercap sysfs (Intel, and AMD Zen with the same tree).

Layout (``Documentation/power/powercap/powercap.rst``): every RAPL zone is a
folder with ``name``, ``energy_uj`` and ``max_energy_range_uj``. Linux shows
each zone twice: as a flat symlink in ``/sys/class/powercap`` (``intel-rapl:0``,
``intel-rapl:0:1``) and nested under its parent zone's folder
(``intel-rapl:0/intel-rapl:0:1``). Zones are therefore keyed by their zone id
(the folder name, unique in the tree) and by real path, and counted once.
``intel-rapl-mmio:*`` zones repeat a package seen through MMIO; a domain seen
through both MSR and MMIO is taken from MSR (``intel-rapl``).

Domains are named from each zone's ``name`` with the socket index:
``package-0``, ``core-0``, ``uncore-0``, ``dram-0`` and ``psys``. A subzone
takes its parent package's suffix (``core`` under ``package-1`` is ``core-1``).
The total is packages + DRAM, or psys alone when psys exists (core and uncore
are inside their package; psys covers the whole SoC).

Wraparound: ``energy_uj`` counts from 0 to ``max_energy_range_uj`` *inclusive*
(the kernel reports the counter mask times the energy unit) and then wraps to
0, so a drop of the counter adds ``max_energy_range_uj + 1`` µJ (the true
modulus is one energy unit more than the maximum; sysfs does not expose the
unit, so 1 µJ stands in for it: an error below 0.1 mJ per wrap). A counter
that reads exactly the same value again has not moved. A background sampler
reads every zone at least twice per wrap period at a worst-case power (the
zone's ``constraint_*_max_power_uw`` doubled, and never less than
:data:`WORST_CASE_W`), so at most one wrap can pass between two samples.

Since CVE-2020-8694 (PLATYPUS) ``energy_uj`` is readable by root only;
:data:`RAPL_ACCESS_HELP` says how to grant read access to a group.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from meters._base import MEASURED, Meter, MeterUnavailable, Probe, Reading
from meters._sampler import Sampler

log = logging.getLogger(__name__)

POWERCAP_ROOT_ENV = "RAYJOULE_POWERCAP_ROOT"
DEFAULT_POWERCAP_ROOT = "/sys/class/powercap"
#: Default sampling interval; shortened automatically when a counter could wrap twice in it.
DEFAULT_INTERVAL_S = 1.0
#: Worst-case power of one zone used to bound the sampling interval (generous on purpose).
WORST_CASE_W = 1000.0
#: Never sample faster than this, whatever a (broken or fake) tree says.
MIN_INTERVAL_S = 0.001

#: How to let a non-root user read RAPL counters; the README reuses this text.
RAPL_ACCESS_HELP = """\
RAPL counters are readable by root only (the default since CVE-2020-8694).
Grant read access to a group instead of running as root:
  1. sudo groupadd -f powercap && sudo usermod -aG powercap "$USER"   (log in again)
  2. either a udev rule, /etc/udev/rules.d/99-powercap.rules:
       SUBSYSTEM=="powercap", ACTION=="add", RUN+="/bin/chgrp -R powercap /sys%p", \
RUN+="/bin/chmod -R g+r /sys%p"
     then: sudo udevadm control --reload && sudo udevadm trigger --subsystem-match=powercap
  3. or sysfsutils, one pair of lines per zone in /etc/sysfs.conf:
       mode class/powercap/intel-rapl:0/energy_uj = 0440
       owner class/powercap/intel-rapl:0/energy_uj = root:powercap
     then: sudo systemctl restart sysfsutils
Do not chmod the files world-readable: the counters leak secrets through power side channels."""

_ZONE_RE = re.compile(r"^(intel-rapl(?:-mmio)?):(\d+(?::\d+)*)$")

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

    zone_id: str  # folder name, e.g. "intel-rapl:0:1"
    control: str  # "intel-rapl" (MSR) or "intel-rapl-mmio"
    path: Path
    domain: str  # e.g. "core-0"
    in_total: bool  # counted in the total (packages + dram, or psys)
    max_range_uj: int
    worst_case_w: float

    @property
    def energy_path(self) -> Path:
        return self.path / "energy_uj"

    @property
    def wrap_s(self) -> float:
        """Seconds for one full wrap at the worst-case power."""
        return (self.max_range_uj + 1) / (self.worst_case_w * 1e6)


def _zone_key(zone_id: str) -> tuple[str, tuple[int, ...]]:
    m = _ZONE_RE.match(zone_id)
    assert m is not None
    return m.group(1), tuple(int(p) for p in m.group(2).split(":"))


def _find_zone_dirs(root: Path) -> dict[str, Path]:
    """Zone id -> folder, each zone once, from the flat links and the nested folders."""
    found: dict[str, Path] = {}
    seen_real: set[str] = set()

    def visit(folder: Path, depth: int) -> None:
        if depth > 4:
            return
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
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
            elif entry.name in ("intel-rapl", "intel-rapl-mmio") and entry.is_dir():
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
        except (OSError, ValueError):
            continue
    return worst


def discover_zones(
    root: str | os.PathLike[str] | None = None,
    *,
    reader: Reader = read_text,
    max_power_w: float | None = None,
) -> list[RaplZone]:
    """Every RAPL zone under ``root``, deduplicated and named; does not read ``energy_uj``.

    Raises :class:`MeterUnavailable` when there are none or a zone is malformed.
    """
    base = powercap_root(root)
    if not base.is_dir():
        raise MeterUnavailable(
            f"no powercap tree at {base}: this host exposes no RAPL counters (a VM, a non-x86 "
            f"CPU, or the intel_rapl_msr / rapl kernel module is not loaded: "
            f"`sudo modprobe intel_rapl_msr`); set {POWERCAP_ROOT_ENV} to use another root"
        )
    dirs = _find_zone_dirs(base)
    if not dirs:
        raise MeterUnavailable(
            f"no intel-rapl zones under {base}: load the RAPL driver "
            f"(`sudo modprobe intel_rapl_msr`) on a host whose CPU has RAPL (Intel, AMD Zen)"
        )
    raw_names: dict[str, str] = {}
    for zone_id, folder in dirs.items():
        try:
            raw_names[zone_id] = reader(folder / "name").strip()
        except OSError as exc:
            raise MeterUnavailable(f"cannot read {folder / 'name'}: {exc}") from exc

    zones: list[RaplZone] = []
    taken: dict[str, str] = {}  # domain -> zone id
    # MSR zones first so that a package also seen through MMIO is taken from MSR.
    order = sorted(dirs, key=lambda z: (_zone_key(z)[0] != "intel-rapl", _zone_key(z)))
    for zone_id in order:
        control, idx = _zone_key(zone_id)
        raw = raw_names[zone_id]
        if len(idx) == 1:
            domain, in_total = raw, True
        else:
            parent_id = f"{control}:" + ":".join(str(i) for i in idx[:-1])
            parent = raw_names.get(parent_id, "")
            suffix = parent[len("package-"):] if parent.startswith("package-") else parent
            domain = f"{raw}-{suffix}" if suffix and not re.search(r"-\d+$", raw) else raw
            in_total = raw.startswith("dram")
        if domain in taken:
            if control == "intel-rapl-mmio":
                log.debug("skip %s: %s is read through MSR", zone_id, domain)
                continue
            domain = f"{domain}@{zone_id}"
        folder = dirs[zone_id]
        try:
            max_range = int(reader(folder / "max_energy_range_uj").strip())
        except (OSError, ValueError) as exc:
            raise MeterUnavailable(
                f"cannot read {folder / 'max_energy_range_uj'} ({exc}): without the counter "
                f"range the meter cannot handle wraparound"
            ) from exc
        if max_range <= 0:
            raise MeterUnavailable(f"{folder / 'max_energy_range_uj'} is {max_range}, not > 0")
        taken[domain] = zone_id
        zones.append(
            RaplZone(
                zone_id=zone_id,
                control=control,
                path=folder,
                domain=domain,
                in_total=in_total,
                max_range_uj=max_range,
                worst_case_w=_worst_case_w(folder, reader, max_power_w),
            )
        )
    if any(z.domain.startswith("psys") for z in zones):
        zones = [replace(z, in_total=z.domain.startswith("psys")) for z in zones]
    return zones


def _read_energy(zone: RaplZone, reader: Reader) -> int:
    try:
        return int(reader(zone.energy_path).strip())
    except PermissionError as exc:
        raise MeterUnavailable(
            f"cannot read {zone.energy_path}: permission denied.\n{RAPL_ACCESS_HELP}"
        ) from exc
    except (OSError, ValueError) as exc:
        raise MeterUnavailable(f"cannot read {zone.energy_path}: {exc}") from exc


def counter_delta(prev_uj: int, now_uj: int, max_range_uj: int) -> int:
    """Energy between two counter values, assuming at most one wrap in between.

    >>> counter_delta(10, 25, 100), counter_delta(90, 5, 100), counter_delta(7, 7, 100)
    (15, 16, 0)
    >>> counter_delta(100, 0, 100)   # from the maximum to 0 is one step
    1
    """
    if now_uj >= prev_uj:
        return now_uj - prev_uj
    return now_uj + (max_range_uj + 1) - prev_uj


class RaplMeter(Meter):
    """Measured energy from RAPL counters in the powercap tree.

    >>> with RaplMeter(root="/tmp/fake-powercap") as m:     # doctest: +SKIP
    ...     r = m.read(); r.joules["package-0"], r.total
    """

    name = "rapl"
    kind = MEASURED

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
        *,
        reader: Reader = read_text,
        max_power_w: float | None = None,
    ) -> None:
        """``root``: powercap root (default ``$RAYJOULE_POWERCAP_ROOT`` or ``/sys/class/powercap``).
        ``interval_s``: background sampling interval, shortened to half the fastest possible
        wrap. ``reader``: how a sysfs file is read (tests inject failures). ``max_power_w``:
        worst-case watts of a zone, overriding the constraint files and :data:`WORST_CASE_W`.
        """
        super().__init__()
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        self.root = powercap_root(root)
        self._reader = reader
        self._zones = discover_zones(self.root, reader=reader, max_power_w=max_power_w)
        self.domains = [z.domain for z in self._zones]
        self.total_domains = tuple(z.domain for z in self._zones if z.in_total)
        self._lock = threading.RLock()  # read() samples while holding it
        self._last = [_read_energy(z, reader) for z in self._zones]
        self._acc_uj = [0] * len(self._zones)
        self._t_last = time.monotonic()
        safe = min(z.wrap_s for z in self._zones) / 2.0
        self.interval_s = max(MIN_INTERVAL_S, min(float(interval_s), safe))
        if self.interval_s < interval_s:
            log.info("rapl: sampling every %.3f s so no counter can wrap twice", self.interval_s)
        self._sampler = Sampler(self._sample, self.interval_s, name="rapl-sampler")
        self._sampler.start()

    @property
    def zones(self) -> list[RaplZone]:
        return list(self._zones)

    def _sample(self) -> float:
        """Read every counter once, add the deltas; returns the monotonic time of the sample."""
        with self._lock:
            for i, zone in enumerate(self._zones):
                now = _read_energy(zone, self._reader)
                self._acc_uj[i] += counter_delta(self._last[i], now, zone.max_range_uj)
                self._last[i] = now
            self._t_last = time.monotonic()
            return self._t_last

    def _read(self) -> Reading:
        self._sampler.check()
        with self._lock:
            t = self._sample()
            joules = {z.domain: acc / 1e6 for z, acc in zip(self._zones, self._acc_uj, strict=True)}
        return Reading(joules, t=t, kind=MEASURED, source=self.name,
                       total_domains=self.total_domains)

    def _close(self) -> None:
        self._sampler.stop()

    @classmethod
    def _probe(cls, **options: Any) -> Probe:
        reader: Reader = options.get("reader", read_text)
        try:
            zones = discover_zones(options.get("root"), reader=reader,
                                   max_power_w=options.get("max_power_w"))
            for zone in zones:
                _read_energy(zone, reader)
        except MeterUnavailable as exc:
            return Probe(False, exc.reason, MEASURED, [])
        return Probe(True, None, MEASURED, [z.domain for z in zones])
