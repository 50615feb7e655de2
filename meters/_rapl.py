"""RAPL energy counters through Linux powercap sysfs (Intel, and AMD Zen with the same tree).

Which zones are read, how they are named and which ones the total counts
(hexadecimal zone ids, duplicates seen through MMIO, die zones that mirror
one per-socket counter on AMD) is decided by :mod:`meters._powercap`; this
module turns those counters into joules.

Wraparound: ``energy_uj`` counts from 0 to ``max_energy_range_uj`` *inclusive*
(the kernel reports the counter mask times the energy unit) and then wraps to
0, so a drop of the counter adds ``max_energy_range_uj + 1`` µJ (the true
modulus is one energy unit more than the maximum; sysfs does not expose the
unit, so 1 µJ stands in for it: an error below 0.1 mJ per wrap). A counter
that reads exactly the same value again has not moved. A background sampler
reads every zone at least twice per wrap period at a worst-case power (the
zone's ``constraint_*_max_power_uw`` doubled, and never less than
:data:`meters._powercap.WORST_CASE_W`), so at most one wrap can pass between two samples.

Since CVE-2020-8694 (PLATYPUS) ``energy_uj`` is readable by root only;
:data:`RAPL_ACCESS_HELP` says how to grant read access to a group.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from meters._base import MEASURED, Meter, MeterError, MeterUnavailable, Probe, Reading
from meters._powercap import (
    RaplZone,
    Reader,
    discover_zones,
    powercap_root,
    read_text,
    scan_powercap,
)
from meters._sampler import Sampler

log = logging.getLogger(__name__)

#: Default sampling interval; shortened automatically when a counter could wrap twice in it.
DEFAULT_INTERVAL_S = 1.0
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
        die_counters: str = "auto",
        cpuinfo: str | os.PathLike[str] | None = None,
    ) -> None:
        """``root``: powercap root (default ``$RAYJOULE_POWERCAP_ROOT`` or ``/sys/class/powercap``).
        ``interval_s``: background sampling interval, shortened to half the fastest possible
        wrap. ``reader``: how a sysfs file is read (tests inject failures). ``max_power_w``:
        worst-case watts of a zone, overriding the constraint files and
        :data:`meters._powercap.WORST_CASE_W`.
        ``die_counters``: ``"auto"``, ``"per-package"`` or ``"per-die"`` (how die zones of
        one package count, see :mod:`meters._powercap`); ``cpuinfo``: the cpuinfo file that
        names the vendor (default ``$RAYJOULE_CPUINFO`` or ``/proc/cpuinfo``).
        """
        super().__init__()
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s!r}")
        self.root = powercap_root(root)
        self._reader = reader
        self._scan = scan_powercap(self.root, reader=reader, max_power_w=max_power_w,
                                   die_counters=die_counters, cpuinfo=cpuinfo)
        self._zones = self._scan.zones
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

    def _basis(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "zones": [z.to_dict() for z in self._zones],
            "total_domains": list(self.total_domains),
            "total_rule": "psys alone" if any(z.name.startswith("psys") for z in self._zones)
            else "packages + dram (core and uncore are inside their package)",
            "die_zones": self._scan.die_rule.to_dict(),
            "not_read": dict(self._scan.skipped),
            "interval_s": self.interval_s,
        }

    @classmethod
    def _probe(cls, **options: Any) -> Probe:
        reader: Reader = options.get("reader", read_text)
        try:
            zones = discover_zones(options.get("root"), reader=reader,
                                   max_power_w=options.get("max_power_w"),
                                   die_counters=options.get("die_counters", "auto"),
                                   cpuinfo=options.get("cpuinfo"))
            for zone in zones:
                _read_energy(zone, reader)
        except MeterError as exc:
            return Probe(False, str(exc), MEASURED, [])
        return Probe(True, None, MEASURED, [z.domain for z in zones])
