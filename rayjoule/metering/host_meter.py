"""One host's meters, measurement windows and idle baseline.

Meters only return cumulative counters; this module owns *windows* over
them (as Zeus' monitor does), so a run, an idle baseline and a long-lived
metrics exporter can overlap on the same counters. One :class:`HostMeter`
exists per physical host: in the driver for native and Lithops runs, inside
the ``rayjoule-meter:<host>`` actor for Ray runs.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import meters
from rayjoule.cluster.hosts import host_key
from rayjoule.core.result import MeterLabel

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 1.0

PidProvider = Callable[[], list[int]]


@dataclass(frozen=True)
class Snapshot:
    """Cumulative joules of all this host's meters at one instant."""

    t: float
    by_domain: dict[str, float]
    total_j: float


@dataclass(frozen=True)
class WindowEnergy:
    """Energy one host used over one window, with the label of the meter(s) that saw it."""

    host: str
    meter: MeterLabel
    t0: float
    t1: float
    total_j: float
    by_domain: dict[str, float]
    samples: list[tuple[float, str, float]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0


@dataclass(frozen=True)
class IdleBaseline:
    """Idle power of a host and how it was obtained (recorded with every result)."""

    watts: float
    policy: str


class HostMeter:
    """The meters of this host, read together, with overlapping named windows.

    >>> hm = HostMeter("tdp")                         # doctest: +SKIP
    >>> w = hm.start_window(); ...; energy = hm.stop_window(w)   # doctest: +SKIP
    """

    def __init__(
        self,
        meter: str = "auto",
        tdp_scope: str = "host",
        pids: PidProvider | None = None,
        sample_interval_s: float = SAMPLE_INTERVAL_S,
    ) -> None:
        self.host = host_key()
        names = meters.detect().chosen if meter == "auto" else [meter]
        self._meters = [_build(name, tdp_scope, pids) for name in names]
        kinds = {m.kind for m in self._meters}
        self.label = MeterLabel(
            name="+".join(m.name for m in self._meters),
            kind="measured" if kinds == {"measured"} else "modelled",
        )
        if tdp_scope == "process" and "tdp" in names:
            self.label = MeterLabel(name=self.label.name.replace("tdp", "tdp[process]"),
                                    kind=self.label.kind)
        self._interval = sample_interval_s
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._windows: dict[int, tuple[Snapshot, list[tuple[float, str, float]]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- readings --------------------------------------------------------------
    def read(self) -> Snapshot:
        by_domain: dict[str, float] = {}
        total = 0.0
        t = time.monotonic()
        for m in self._meters:
            r = m.read()
            by_domain.update(r.joules)
            total += r.total
        return Snapshot(t=t, by_domain=by_domain, total_j=total)

    def idle_baseline(self, seconds: float) -> IdleBaseline:
        """Idle watts: measured over ``seconds`` for measured meters, the model's for modelled.

        A measured meter with ``seconds`` = 0 gets idle 0 W: everything counts as dynamic.
        """
        watts, parts = 0.0, []
        measured = [m for m in self._meters if m.kind == "measured"]
        for m in self._meters:
            if m.kind != "measured":
                idle = float(m.idle_watts)
                watts += idle
                parts.append(f"{m.name}: model idle power {idle:.2f} W")
        if measured and seconds > 0:
            before = [m.read() for m in measured]
            time.sleep(seconds)
            after = [m.read() for m in measured]
            for m, a, b in zip(measured, before, after, strict=True):
                w = (b.total - a.total) / max(b.t - a.t, 1e-9)
                watts += w
                parts.append(f"{m.name}: measured {w:.2f} W over {b.t - a.t:.1f} s idle")
        elif measured:
            parts.extend(f"{m.name}: no idle baseline (idle_seconds=0), 0 W" for m in measured)
        return IdleBaseline(watts=watts, policy="; ".join(parts))

    # -- windows ---------------------------------------------------------------
    def start_window(self) -> int:
        """Open a window and return its id; samples are kept while any window is open."""
        snap = self.read()
        with self._lock:
            wid = next(self._ids)
            self._windows[wid] = (snap, [])
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._sample_loop, name="rayjoule-window-sampler", daemon=True
                )
                self._thread.start()
        return wid

    def stop_window(self, wid: int) -> WindowEnergy:
        """Close a window: the energy since ``start_window`` and its samples."""
        end = self.read()
        with self._lock:
            start, samples = self._windows.pop(wid)
            if not self._windows:
                self._stop.set()
        by_domain = {d: end.by_domain.get(d, 0.0) - j for d, j in start.by_domain.items()}
        rel = [(t - start.t, d, j - start.by_domain.get(d, 0.0)) for t, d, j in samples]
        return WindowEnergy(
            host=self.host, meter=self.label, t0=start.t, t1=end.t,
            total_j=end.total_j - start.total_j, by_domain=by_domain, samples=rel,
        )

    def _sample_loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                snap = self.read()
            except meters.MeterError:
                log.exception("meter sample failed on %s", self.host)
                continue
            rows = [(snap.t, d, j) for d, j in snap.by_domain.items()]
            with self._lock:
                for _, samples in self._windows.values():
                    samples.extend(rows)

    def close(self) -> None:
        self._stop.set()
        for m in self._meters:
            m.close()



def _build(name: str, tdp_scope: str, pids: PidProvider | None) -> meters.Meter:
    if name == "tdp":
        return meters.TdpMeter(scope=tdp_scope, pids=pids)
    return meters.get_meter(name)


class LocalMetering:
    """Metering for frameworks whose work stays on this host (native, Lithops localhost).

    The same interface as :class:`rayjoule.metering.ray_meters.RayMetering`: idle
    baseline, then start/stop around each repeat, per physical host.
    """

    def __init__(self, meter: str, tdp_scope: str, pids: PidProvider | None = None) -> None:
        self._hm = HostMeter(meter, tdp_scope, pids)
        self._wid: int | None = None

    @property
    def label(self) -> MeterLabel:
        return self._hm.label

    def idle(self, seconds: float) -> dict[str, IdleBaseline]:
        return {self._hm.host: self._hm.idle_baseline(seconds)}

    def start(self) -> None:
        self._wid = self._hm.start_window()

    def stop(self) -> dict[str, WindowEnergy]:
        if self._wid is None:
            return {}
        wid, self._wid = self._wid, None
        return {self._hm.host: self._hm.stop_window(wid)}

    def record_tasks(self, tasks: list) -> None:
        """Native and Lithops runs export no Ray metrics (RayMetering does): nothing to do."""

    def close(self) -> None:
        self._hm.close()
