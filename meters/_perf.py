"""RAPL through ``perf stat``'s ``power/energy-*/`` events, for hosts where perf can count them.

Why besides powercap: ``perf_event_paranoid`` or CAP_PERFMON may grant access
where the powercap files stay root-only. The meter runs
``perf stat -a -x ';' -I <ms> -e power/energy-pkg/,...`` as a background
process and adds up the per-interval joules it prints (with ``-I``, each line
is the energy of the last interval, not a running total).

Locale: perf calls ``setlocale(LC_ALL, "")`` and prints values with ``%.2f``,
so under es_ES it writes ``1,37`` where en_US writes ``1.37`` — with ``-x,``
the decimal comma splits the value into two fields. The meter therefore
forces ``LC_ALL=C`` in perf's environment *and* uses ``;`` as separator, and
:func:`parse_perf_stat_line` copes with either locale and either separator:
the interval timestamp is always printed with a literal ``.`` by perf, the
value is the run of numeric fields after it (two numeric fields = integer and
fractional part split by a decimal comma), and the unit and event follow.

Domains (perf adds all sockets up): ``energy-pkg`` → ``package``,
``energy-ram`` → ``dram``, ``energy-cores`` → ``core``, ``energy-gpu`` →
``uncore``, ``energy-psys`` → ``psys``. The total is package + dram, or psys
alone when present, as for :mod:`meters._rapl`. Resolution is the interval
(default 100 ms): a read returns the joules of the intervals perf has printed.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meters._base import MEASURED, Meter, MeterError, MeterUnavailable, Probe, Reading
from meters._cpuinfo import CpuInfo, read_cpuinfo
from meters._dies import perf_package_cpus

log = logging.getLogger(__name__)

DEFAULT_EVENTS_DIR = Path("/sys/bus/event_source/devices/power/events")
DEFAULT_PARANOID = Path("/proc/sys/kernel/perf_event_paranoid")
DEFAULT_INTERVAL_MS = 100
SEPARATOR = ";"
#: perf event (without "power/…/") -> domain name
EVENT_DOMAINS = {
    "energy-pkg": "package",
    "energy-ram": "dram",
    "energy-cores": "core",
    "energy-gpu": "uncore",
    "energy-psys": "psys",
}
_CAP_SYS_ADMIN = 21
_CAP_PERFMON = 38
_NUM = re.compile(r"^\d+(?:[.,]\d+)?$")
_NOT_COUNTED = ("<not counted>", "<not supported>")

PERF_ACCESS_HELP = (
    "system-wide perf counting needs kernel.perf_event_paranoid <= 0 for non-root users: "
    "`sudo sysctl kernel.perf_event_paranoid=0` (persist it in /etc/sysctl.d/), or give the "
    "Python binary CAP_PERFMON: `sudo setcap cap_perfmon+ep $(readlink -f $(which python))`"
)


@dataclass(frozen=True)
class PerfSample:
    """One line of ``perf stat -x SEP -I MS``: ``value`` (None if not counted) of ``event``."""

    t_s: float
    value: float | None
    unit: str
    event: str


def parse_perf_stat_line(line: str, sep: str = SEPARATOR) -> PerfSample | None:
    """Parse one interval line in either locale; None for lines that are not samples.

    >>> parse_perf_stat_line("1.001053209,25.37,Joules,power/energy-pkg/,1001041652,100.00,,", ",")
    PerfSample(t_s=1.001053209, value=25.37, unit='Joules', event='power/energy-pkg/')
    >>> parse_perf_stat_line("1.001053209,25,37,Joules,power/energy-pkg/,1001041652,100,00,,", ",")
    PerfSample(t_s=1.001053209, value=25.37, unit='Joules', event='power/energy-pkg/')
    >>> parse_perf_stat_line("     1.001053209;25,37;Joules;power/energy-pkg/;1001041652;100,00;;")
    PerfSample(t_s=1.001053209, value=25.37, unit='Joules', event='power/energy-pkg/')
    """
    fields = [f.strip() for f in line.rstrip("\r\n").split(sep)]
    if len(fields) < 4 or line.lstrip().startswith("#"):
        return None
    try:
        t_s = float(fields[0])  # perf prints the timestamp with a literal '.', whatever the locale
    except ValueError:
        return None
    i = 1
    while i < len(fields) and _NUM.match(fields[i]) and i < 3:
        i += 1
    numeric = fields[1:i]
    if not numeric and fields[1] in _NOT_COUNTED:
        value, i = None, 2
    elif len(numeric) == 1:
        value = float(numeric[0].replace(",", "."))
    elif len(numeric) == 2 and "." not in numeric[0] + numeric[1] and "," not in numeric[0]:
        value = float(f"{numeric[0]}.{numeric[1]}")  # a decimal comma split by the separator
    else:
        return None
    if i + 1 >= len(fields):
        return None
    unit, event = fields[i], fields[i + 1]
    if not event or _NUM.match(unit):
        return None
    return PerfSample(t_s=t_s, value=value, unit=unit, event=event)


def parse_perf_stat(text: str | Iterable[str], sep: str = SEPARATOR) -> list[PerfSample]:
    """Every sample in ``text`` (other lines, such as perf's messages, are skipped)."""
    lines = text.splitlines() if isinstance(text, str) else text
    return [s for s in (parse_perf_stat_line(line, sep) for line in lines) if s is not None]


def event_domain(event: str) -> str | None:
    """``power/energy-pkg/`` -> ``package``; None for events that are not RAPL energy."""
    name = event.strip("/")
    if name.startswith("power/"):
        name = name[len("power/"):]
    return EVENT_DOMAINS.get(name.strip("/"))


def discover_events(events_dir: str | os.PathLike[str] = DEFAULT_EVENTS_DIR) -> list[str]:
    """The ``energy-*`` events the power PMU lists (sysfs ``.../power/events``)."""
    folder = Path(events_dir)
    try:
        names = sorted(p.name for p in folder.iterdir())
    except OSError:
        return []
    return [n for n in names if n in EVENT_DOMAINS]


def _has_perf_capability() -> bool:
    if os.geteuid() == 0:
        return True
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                caps = int(line.split()[1], 16)
                return bool(caps & (1 << _CAP_PERFMON) or caps & (1 << _CAP_SYS_ADMIN))
    except (OSError, ValueError, IndexError):
        pass
    return False


def _check(perf: str, events_dir: str | os.PathLike[str], paranoid: str | os.PathLike[str],
           privileged: bool | None = None) -> tuple[str, list[str]]:
    """(perf binary, events) or MeterUnavailable with the reason."""
    binary = shutil.which(perf)
    if binary is None:
        raise MeterUnavailable(
            f"perf not found ({perf!r}): install it (Debian/Ubuntu: linux-perf or "
            f"linux-tools-$(uname -r))"
        )
    events = discover_events(events_dir)
    if not events:
        raise MeterUnavailable(
            f"no RAPL energy events in {events_dir}: this CPU or VM exposes no 'power' perf "
            f"PMU (`perf list | grep power/energy` is empty)"
        )
    try:
        level = int(Path(paranoid).read_text().strip())
    except (OSError, ValueError):
        level = None
    if privileged is None:
        privileged = _has_perf_capability()
    if level is not None and level > 0 and not privileged:
        raise MeterUnavailable(f"kernel.perf_event_paranoid is {level}: {PERF_ACCESS_HELP}")
    return binary, events


class PerfMeter(Meter):
    """Measured RAPL energy from a background ``perf stat`` process."""

    name = "perf"
    kind = MEASURED

    def __init__(
        self,
        events: list[str] | None = None,
        interval_ms: int = DEFAULT_INTERVAL_MS,
        *,
        perf: str = "perf",
        events_dir: str | os.PathLike[str] = DEFAULT_EVENTS_DIR,
        paranoid: str | os.PathLike[str] = DEFAULT_PARANOID,
        startup_timeout_s: float = 5.0,
        privileged: bool | None = None,
        cpuinfo: str | os.PathLike[str] | None = None,
    ) -> None:
        """``events``: e.g. ``["energy-pkg", "energy-ram"]`` (default: all the host lists).
        ``perf``, ``events_dir`` and ``paranoid`` locate the binary, the PMU's events folder
        and ``perf_event_paranoid`` (tests point them at fakes). ``privileged``: whether this
        process may count system-wide whatever the paranoid level (default: root or
        CAP_PERFMON / CAP_SYS_ADMIN in its effective capabilities). ``cpuinfo``: names the
        vendor, to count a per-socket counter once per socket (:func:`perf_package_cpus`;
        the PMU's ``cpumask`` is read next to ``events_dir``).
        """
        super().__init__()
        if not 10 <= int(interval_ms) <= 60_000:
            raise MeterError(f"interval_ms must be in [10, 60000], got {interval_ms!r}")
        binary, available = _check(perf, events_dir, paranoid, privileged)
        wanted = list(events) if events is not None else available
        missing = [e for e in wanted if e not in available]
        if missing:
            raise MeterUnavailable(f"perf events {missing} not listed in {events_dir}")
        self.events = wanted
        self.domains = [EVENT_DOMAINS[e] for e in wanted]
        tops = ["psys"] if "psys" in self.domains else [
            d for d in self.domains if d in ("package", "dram")]
        self.total_domains = tuple(tops or self.domains)
        self._joules = dict.fromkeys(self.domains, 0.0)
        self._lock = threading.Lock()
        self._first = threading.Event()
        self._stderr_tail: deque[str] = deque(maxlen=20)
        self._error: BaseException | None = None
        try:
            info: CpuInfo | None = read_cpuinfo(cpuinfo)
        except OSError:
            info = None
        cpus, self.cpu_choice = perf_package_cpus(Path(events_dir).parent / "cpumask", info)
        pick = ["-C", ",".join(map(str, cpus))] if cpus else []
        cmd = [binary, "stat", "-a", *pick, "-x", SEPARATOR, "-I", str(int(interval_ms)),
               "-e", ",".join(f"power/{e}/" for e in wanted)]
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        try:
            self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, env=env, text=True, bufsize=1,
            )
        except OSError as exc:
            raise MeterUnavailable(f"cannot start {' '.join(cmd)}: {exc}") from exc
        self.command = cmd
        self._reader = threading.Thread(target=self._read_lines, name="rayjoule-perf-reader",
                                        daemon=True)
        self._reader.start()
        deadline = time.monotonic() + startup_timeout_s
        while not self._first.wait(0.02):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                break
        if not self._first.is_set() and self._proc.poll() is not None:
            self._reader.join(1.0)
            tail = " | ".join(self._stderr_tail) or "no output"
            raise MeterUnavailable(f"perf stat exited with {self._proc.returncode}: {tail}")

    def _read_lines(self) -> None:
        assert self._proc.stderr is not None
        try:
            for line in self._proc.stderr:
                sample = parse_perf_stat_line(line, SEPARATOR)
                domain = event_domain(sample.event) if sample else None
                if sample is None or domain is None or domain not in self._joules:
                    if line.strip():
                        self._stderr_tail.append(line.strip())
                    continue
                with self._lock:
                    self._joules[domain] += sample.value or 0.0
                self._first.set()
        except BaseException as exc:  # recorded, raised again by read()
            self._error = exc

    def _read(self) -> Reading:
        if self._error is not None:
            raise MeterError(f"perf output reader failed: {self._error!r}") from self._error
        if self._proc.poll() is not None:
            tail = " | ".join(self._stderr_tail) or "no output"
            raise MeterError(f"perf stat stopped (exit {self._proc.returncode}): {tail}")
        with self._lock:
            joules = dict(self._joules)
        return Reading(joules, t=time.monotonic(), kind=MEASURED, source=self.name,
                       total_domains=self.total_domains)

    def _basis(self) -> dict[str, Any]:
        return {
            "events": [f"power/{e}/" for e in self.events],
            "command": list(self.command),
            "total_domains": list(self.total_domains),
            "cpus": self.cpu_choice,
            "note": "perf adds every socket up; joules are the sum of the intervals printed",
        }

    def _close(self) -> None:
        proc = self._proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(2.0)
        self._reader.join(2.0)
        if proc.stderr is not None:
            proc.stderr.close()

    @classmethod
    def _probe(cls, **options: Any) -> Probe:
        try:
            _, events = _check(options.get("perf", "perf"),
                               options.get("events_dir", DEFAULT_EVENTS_DIR),
                               options.get("paranoid", DEFAULT_PARANOID),
                               options.get("privileged"))
        except MeterUnavailable as exc:
            return Probe(False, exc.reason, MEASURED, [])
        wanted = options.get("events") or events
        return Probe(True, None, MEASURED, [EVENT_DOMAINS[e] for e in wanted if e in events])
