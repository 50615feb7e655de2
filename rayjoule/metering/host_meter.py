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
from typing import Any

import psutil

import meters
from meters._sampler import Sampler
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
    #: CPU-seconds the whole host spent busy over the window (attribution's denominator)
    busy_cpu_s: float = 0.0
    #: False when the host was lost mid-window: the figures are those last seen
    complete: bool = True

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
        tdp_watts: float | None = None,
        cpu_threads: int | None = None,
    ) -> None:
        self.host = host_key()
        names = meters.detect().chosen if meter == "auto" else [meter]
        tdp = {k: v for k, v in (("tdp_watts", tdp_watts), ("cpu_threads", cpu_threads))
               if v is not None}
        self._meters = [_build(name, tdp_scope, pids, tdp) for name in names]
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
        self._windows: dict[int, _Window] = {}
        self._sampler: Sampler | None = None

    def describe(self) -> dict[str, Any]:
        """This machine and what each meter's figures rest on (stored with every run)."""
        return {"machine": meters.describe_host(),
                "meters": {m.name: m.basis for m in self._meters}}

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
        """Open a window and return its id; samples are kept while any window is open.

        The first open window starts a fresh :class:`meters.Sampler`; a window reopened
        while the previous sampler thread is still winding down gets a new one, so it is
        sampled too.
        """
        snap = self.read()
        with self._lock:
            wid = next(self._ids)
            self._windows[wid] = _Window(snap, _busy_cpu_s())
            if self._sampler is None:
                self._sampler = Sampler(self._sample, self._interval, "window-sampler")
                self._sampler.start()
        return wid

    def peek_window(self, wid: int) -> WindowEnergy:
        """The energy of an open window so far (kept by callers in case the host is lost)."""
        with self._lock:
            window = self._windows[wid]
        return self._energy(window, self.read(), _busy_cpu_s())

    def stop_window(self, wid: int) -> WindowEnergy:
        """Close a window: the energy since ``start_window`` and its samples.

        Raises :class:`meters.MeterError` when a background sample failed while the
        window was open: a window with a gap is not a measurement.
        """
        with self._lock:
            window = self._windows.pop(wid)
            sampler = None
            if not self._windows:
                sampler, self._sampler = self._sampler, None
        if sampler is not None:
            sampler.stop()
        if window.error is not None:
            raise meters.MeterError(
                f"meter sample failed on {self.host} during the run: {window.error}"
            ) from window.error
        return self._energy(window, self.read(), _busy_cpu_s())

    def _energy(self, window: _Window, end: Snapshot, busy_end: float) -> WindowEnergy:
        start = window.start
        by_domain = {d: end.by_domain.get(d, 0.0) - j for d, j in start.by_domain.items()}
        # the opening and closing readings bracket the background samples, so every window,
        # even one shorter than the sampling interval, has per domain a first sample 0 J
        # and a last sample equal to its energy
        seconds = end.t - start.t
        rel = [(0.0, d, 0.0) for d in start.by_domain]
        rel += [(t - start.t, d, j - start.by_domain.get(d, 0.0)) for t, d, j in window.samples
                if start.t < t < end.t]
        rel += [(seconds, d, j) for d, j in by_domain.items()]
        return WindowEnergy(
            host=self.host, meter=self.label, t0=start.t, t1=end.t,
            total_j=end.total_j - start.total_j, by_domain=by_domain, samples=rel,
            busy_cpu_s=max(busy_end - window.busy_cpu_s, 0.0),
        )

    def _sample(self) -> None:
        """One background sample, kept by every open window; a failure is kept by them too."""
        try:
            snap = self.read()
        except meters.MeterError as exc:
            with self._lock:
                for window in self._windows.values():
                    window.error = window.error or exc
            raise
        rows = [(snap.t, d, j) for d, j in snap.by_domain.items()]
        with self._lock:
            for window in self._windows.values():
                window.samples.extend(rows)

    def close(self) -> None:
        with self._lock:
            sampler, self._sampler = self._sampler, None
        if sampler is not None:
            sampler.stop()
        for m in self._meters:
            m.close()


@dataclass
class _Window:
    """An open window: where it started, what was sampled, and the first sample failure."""

    start: Snapshot
    busy_cpu_s: float
    samples: list[tuple[float, str, float]] = field(default_factory=list)
    error: BaseException | None = None


def _busy_cpu_s() -> float:
    """CPU-seconds the whole host has spent busy since boot (every process, every CPU)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def _build(name: str, tdp_scope: str, pids: PidProvider | None,
           tdp: dict[str, Any]) -> meters.Meter:
    if name == "tdp":
        return meters.TdpMeter(scope=tdp_scope, pids=pids, **tdp)
    return meters.get_meter(name)
