"""rayjoule's energy figures in Ray's metrics export (Prometheus sees ``ray_rayjoule_…``).

Why the meter actors export them: Ray drops a worker's metrics once the process
exits, and the driver exits with the run. The per-host ``rayjoule-meter:<host>``
actors are detached and outlive runs, so counters recorded there stay
scrapeable on each node's metrics export port and keep accumulating across
runs. Ray prefixes every custom metric with ``ray_`` and Prometheus adds
``_total`` to counters:

=============================== ========= ===============================================
Ray name                        type      Prometheus series
=============================== ========= ===============================================
``rayjoule_energy_joules``      Counter   ``ray_rayjoule_energy_joules_total`` (by domain)
``rayjoule_host_energy_joules`` Counter   ``ray_rayjoule_host_energy_joules_total``
``rayjoule_power_watts``        Gauge     ``ray_rayjoule_power_watts``
``rayjoule_task_energy_joules`` Histogram ``ray_rayjoule_task_energy_joules_bucket`` …
=============================== ========= ===============================================

Domains overlap (``core-0`` lies inside ``package-0``, ``psys`` contains the
packages), so summing ``rayjoule_energy_joules`` over ``domain`` double counts;
``rayjoule_host_energy_joules`` is the host's total without double counting
(:attr:`rayjoule.metering.host_meter.WindowEnergy.total_j`) and is what dashboards sum.

This module only formats and records; it never decides what was measured.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from meters._sampler import Sampler
from rayjoule.core.result import MeterLabel
from rayjoule.metering.host_meter import HostMeter, Snapshot, WindowEnergy

log = logging.getLogger(__name__)

#: Ray's rule for metric names (``ray.util.metrics``), minus ``:``, which Ray deprecates.
METRIC_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

ENERGY = "rayjoule_energy_joules"
HOST_ENERGY = "rayjoule_host_energy_joules"
POWER = "rayjoule_power_watts"
TASK_ENERGY = "rayjoule_task_energy_joules"

RUN_TAGS = ("workload", "framework", "host", "meter", "kind")
ENERGY_TAGS = (*RUN_TAGS, "domain")
POWER_TAGS = ("host", "meter", "kind", "domain")

#: Per-task joules: roughly ×3 steps from 10 mJ (a sleeping task on a model) to 10 kJ.
TASK_ENERGY_BOUNDARIES_J = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0,
                            1000.0, 3000.0, 10000.0)

POWER_INTERVAL_S = 2.0


def prometheus_name(name: str, metric_type: str = "counter") -> str:
    """The series name Prometheus shows for a Ray metric (counters get ``_total``).

    >>> prometheus_name(ENERGY)
    'ray_rayjoule_energy_joules_total'
    """
    return f"ray_{name}_total" if metric_type == "counter" else f"ray_{name}"


def check_metric_name(name: str) -> str:
    """Return ``name`` if Ray will export it; raise ValueError otherwise (Ray only warns)."""
    if not METRIC_NAME_RE.match(name):
        raise ValueError(f"invalid Ray metric name {name!r}: letters, digits and _ only, "
                         "not starting with a digit")
    return name


def _ray_metrics() -> Any:
    from ray.util import metrics

    return metrics


class EnergyMetrics:
    """The four rayjoule metrics of one process (a meter actor).

    ``factory`` is anything with ``Counter``, ``Gauge`` and ``Histogram``
    constructors shaped like ``ray.util.metrics`` (tests pass fakes).

    >>> m = EnergyMetrics()                                              # doctest: +SKIP
    >>> m.record_window("pi", "ray", window)  # after each run's window  # doctest: +SKIP
    """

    def __init__(self, factory: Any | None = None) -> None:
        f = factory or _ray_metrics()
        self.energy = f.Counter(
            check_metric_name(ENERGY),
            description="Joules measured during rayjoule runs, per meter domain "
                        "(domains overlap: do not sum over domain).",
            tag_keys=ENERGY_TAGS,
        )
        self.host_energy = f.Counter(
            check_metric_name(HOST_ENERGY),
            description="Joules measured during rayjoule runs, host total (no double counting).",
            tag_keys=RUN_TAGS,
        )
        self.power = f.Gauge(
            check_metric_name(POWER),
            description="Current power of the host per meter domain, watts.",
            tag_keys=POWER_TAGS,
        )
        self.task_energy = f.Histogram(
            check_metric_name(TASK_ENERGY),
            description="Energy attributed to each task (dynamic share by CPU time), joules.",
            boundaries=list(TASK_ENERGY_BOUNDARIES_J),
            tag_keys=RUN_TAGS,
        )

    def record_window(self, workload: str, framework: str, window: WindowEnergy) -> None:
        """Add one run window's joules to the counters (per domain and host total)."""
        tags = _run_tags(workload, framework, window.host, window.meter)
        for domain, joules in sorted(window.by_domain.items()):
            _inc(self.energy, joules, {**tags, "domain": domain})
        _inc(self.host_energy, window.total_j, tags)

    def record_tasks(self, workload: str, framework: str, host: str, label: MeterLabel,
                     energies_j: Iterable[float]) -> int:
        """Observe each task's attributed joules; return how many were recorded."""
        tags = _run_tags(workload, framework, host, label)
        n = 0
        for joules in energies_j:
            self.task_energy.observe(float(joules), tags)
            n += 1
        return n

    def set_power(self, host: str, label: MeterLabel, watts: Mapping[str, float]) -> None:
        for domain, w in watts.items():
            self.power.set(float(w), {"host": host, "meter": label.name, "kind": label.kind,
                                      "domain": domain})


def _run_tags(workload: str, framework: str, host: str, label: MeterLabel) -> dict[str, str]:
    return {"workload": str(workload), "framework": str(framework), "host": host,
            "meter": label.name, "kind": label.kind}


def _inc(counter: Any, joules: float, tags: dict[str, str]) -> None:
    """Ray counters reject increments <= 0; a zero window is skipped, a negative one logged."""
    if joules > 0:
        counter.inc(float(joules), tags)
    elif joules < 0:
        log.warning("negative energy %.6g J for %s not exported (counter reset or wrap?)",
                    joules, tags)


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
        """Read every HostMeter; set the gauge from the previous reading (none the first time)."""
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
