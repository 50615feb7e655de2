"""The host-power gauge: every host's watts, published all the time by its meter actor.

Why apart from the counters (:mod:`rayjoule.metering.metrics`): the counters change only
when a run's window closes; this gauge is set from a sampler thread between runs too.
"""

from __future__ import annotations

from collections.abc import Callable

from meters._sampler import Sampler
from rayjoule.metering.host_meter import HostMeter, Snapshot
from rayjoule.metering.metrics import POWER_INTERVAL_S, EnergyMetrics


def watts_between(a: Snapshot, b: Snapshot) -> dict[str, float]:
    """Average power per domain between two snapshots of the same meters."""
    dt = b.t - a.t
    if dt <= 0:
        return {}
    return {d: max(b.by_domain.get(d, j) - j, 0.0) / dt for d, j in a.by_domain.items()}


class PowerPublisher:
    """Sets the watts gauge of every HostMeter every ``interval_s`` (a ``meters.Sampler``).

    Why a thread in the actor: a gauge only reflects what was last set, and between runs
    nobody else calls the actor, yet the dashboard should show the host's power all the
    time. A failed read stops the sampler and is kept (:attr:`error`, shown by
    :meth:`describe`); the next run's ``start`` begins a fresh one.
    """

    def __init__(self, metrics: EnergyMetrics, host_meters: Callable[[], list[HostMeter]],
                 interval_s: float = POWER_INTERVAL_S) -> None:
        self._metrics = metrics
        self._host_meters = host_meters
        self._interval = interval_s
        self._last: dict[int, Snapshot] = {}
        self._watts: dict[int, float] = {}
        self._sampler: Sampler | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        if self._sampler is not None and self._sampler.running:
            return
        if self._sampler is not None:
            self.error = self._sampler.error
        self._sampler = Sampler(self.publish_once, self._interval, "power-gauge")
        self._sampler.start()

    def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()

    def publish_once(self) -> None:
        """Read every HostMeter; set the gauge from the previous reading (none the first time);
        set the run-power gauge again (:meth:`EnergyMetrics.refresh_run_power`)."""
        self._metrics.refresh_run_power()
        for hm in self._host_meters():
            snap = hm.read()
            prev = self._last.get(id(hm))
            self._last[id(hm)] = snap
            if prev is not None:
                watts = watts_between(prev, snap)
                self._metrics.set_power(hm.host, hm.label, watts)
                self._watts[id(hm)] = (snap.total_j - prev.total_j) / max(snap.t - prev.t, 1e-9)

    def describe(self, host: str) -> str:
        """One line per meter for the Ray dashboard's actor view: joules and watts."""
        parts = []
        for hm in self._host_meters():
            last = self._last.get(id(hm))
            joules = f"{last.total_j:.1f} J" if last else "no reading yet"
            watts = self._watts.get(id(hm))
            parts.append(f"{hm.label.name} ({hm.label.kind}): {joules} since start"
                         + (f", {watts:.1f} W now" if watts is not None else ""))
        error = self._sampler.error if self._sampler is not None else self.error
        if error is not None:
            parts.append(f"power gauge stopped: {error}")
        return f"rayjoule-meter {host}: " + ("; ".join(parts) or "no meter in use yet")
