"""rayjoule's energy figures in Ray's metrics export (Prometheus sees ``ray_rayjoule_…``).

Why the meter actors export them: Ray drops a worker's metrics once the process
exits, and the driver exits with the run. The per-host ``rayjoule-meter:<host>``
actors are detached and outlive runs, so counters recorded there stay
scrapeable on each node's metrics export port and keep accumulating across
runs. Ray prefixes every custom metric with ``ray_`` and Prometheus adds
``_total`` to counters:

====================================== ======= ================================================
Ray name                               type    Prometheus series
====================================== ======= ================================================
``rayjoule_energy_joules``             Counter ``ray_rayjoule_energy_joules_total`` (by domain)
``rayjoule_host_energy_joules``        Counter ``ray_rayjoule_host_energy_joules_total``
``rayjoule_tasks``                     Counter ``ray_rayjoule_tasks_total``
``rayjoule_task_energy_joules_bucket`` Counter ``ray_rayjoule_task_energy_joules_bucket_total``
``rayjoule_power_watts``               Gauge   ``ray_rayjoule_power_watts``
``rayjoule_run_power_watts``           Gauge   ``ray_rayjoule_run_power_watts`` (latest run)
====================================== ======= ================================================

Domains overlap (``core-0`` lies inside ``package-0``, ``psys`` contains the
packages), so summing ``rayjoule_energy_joules`` over ``domain`` double counts;
``rayjoule_host_energy_joules`` is the host's total without double counting
(:attr:`rayjoule.metering.host_meter.WindowEnergy.total_j`) and is what dashboards sum.

**Every series exists at 0 before its first increment.** Prometheus computes
``increase()`` and ``rate()`` from the samples it scraped; a series whose first
scrape already holds a run's joules shows an increase of 0, so a workload run
once would show 0 J. Hence :meth:`EnergyMetrics.open_window` records 0 on every
series a run will add to when its window opens, and the first increment of a
series is held back until :attr:`EnergyMetrics.settle_s` after its 0 was
recorded: long enough for Ray to export the 0 and for Prometheus to scrape it
(:func:`settle_seconds`). A run longer than that is never delayed; later runs
add to series that already exist, so only a series' first run can wait. A
held-back increment lives in the actor: should the actor die meanwhile, it is
lost with every other count the actor held (the store keeps the run either way).

Why task energies are counters and not a ``ray.util.metrics.Histogram``: a
Ray histogram series cannot exist at 0 (Ray's metrics agent rebuilds histograms
from the observations, and there are none yet), so per-task energy is the
Prometheus histogram layout built from counters instead, cumulative buckets
``ray_rayjoule_task_energy_joules_bucket_total{le="0.3"}`` (tasks whose
attributed energy was ≤ 0.3 J; ``le="+Inf"`` counts every task), which
``histogram_quantile`` reads like any histogram.

Why a run-power gauge: the counters only grow when a window closes, one step per run,
so ``rate()`` of them spreads a run's joules over the rate window and reads a fraction
of the run's power. ``rayjoule_run_power_watts`` holds each host's mean watts over the
latest window of a workload (its joules / its seconds), set when the window closes and
set again with the host power (Ray's metrics agent drops a gauge value that is not
refreshed within two report intervals).

This module only formats and records; it never decides what was measured.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rayjoule.core.result import MeterLabel
from rayjoule.metering.host_meter import WindowEnergy

log = logging.getLogger(__name__)

#: Ray's rule for metric names (``ray.util.metrics``), minus ``:``, which Ray deprecates.
METRIC_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

ENERGY = "rayjoule_energy_joules"
HOST_ENERGY = "rayjoule_host_energy_joules"
POWER = "rayjoule_power_watts"
RUN_POWER = "rayjoule_run_power_watts"
TASKS = "rayjoule_tasks"
TASK_ENERGY_BUCKET = "rayjoule_task_energy_joules_bucket"

RUN_TAGS = ("workload", "framework", "host", "meter", "kind")
ENERGY_TAGS = (*RUN_TAGS, "domain")
BUCKET_TAGS = (*RUN_TAGS, "le")
POWER_TAGS = ("host", "meter", "kind", "domain")

#: Per-task joules: roughly ×3 steps from 10 mJ (a sleeping task on a model) to 10 kJ.
TASK_ENERGY_BOUNDARIES_J = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0,
                            1000.0, 3000.0, 10000.0)

POWER_INTERVAL_S = 2.0

#: how often Prometheus scrapes the metrics export port, if not Ray's generated config's 10 s:
#: set it in the environment of ``ray start`` (the meter actors read it)
SCRAPE_INTERVAL_ENV = "RAYJOULE_SCRAPE_INTERVAL_S"
DEFAULT_SCRAPE_INTERVAL_S = 10.0
#: added to report + scrape interval against jitter in either
SETTLE_MARGIN_S = 1.0

#: one counter series: (metric name, sorted tag items)
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
Defer = Callable[[float, Callable[[], None]], None]


def prometheus_name(name: str, metric_type: str = "counter") -> str:
    """The series name Prometheus shows for a Ray metric (counters get ``_total``).

    >>> prometheus_name(ENERGY)
    'ray_rayjoule_energy_joules_total'
    >>> prometheus_name(POWER, "gauge")
    'ray_rayjoule_power_watts'
    """
    return f"ray_{name}_total" if metric_type == "counter" else f"ray_{name}"


def check_metric_name(name: str) -> str:
    """Return ``name`` if Ray will export it; raise ValueError otherwise (Ray only warns)."""
    if not METRIC_NAME_RE.match(name):
        raise ValueError(f"invalid Ray metric name {name!r}: letters, digits and _ only, "
                         "not starting with a digit")
    return name


def bucket_label(boundary_j: float) -> str:
    """The ``le`` label of a task-energy bucket, as Prometheus histograms spell it.

    >>> [bucket_label(b) for b in (0.01, 1.0, 10000.0, math.inf)]
    ['0.01', '1', '10000', '+Inf']
    """
    return "+Inf" if math.isinf(boundary_j) else f"{boundary_j:g}"


BUCKET_LABELS = tuple(bucket_label(b) for b in (*TASK_ENERGY_BOUNDARIES_J, math.inf))


def settle_seconds(report_interval_s: float, environ: Mapping[str, str] | None = None) -> float:
    """How long a new series must sit at 0 before its first increment: Ray's export
    interval (the 0 reaches the metrics agent) + Prometheus' scrape interval (a scrape
    sees it) + a margin.

    >>> settle_seconds(1.0, {SCRAPE_INTERVAL_ENV: "1"})
    3.0
    >>> settle_seconds(10.0, {})
    21.0
    """
    env = os.environ if environ is None else environ
    raw = env.get(SCRAPE_INTERVAL_ENV)
    scrape = DEFAULT_SCRAPE_INTERVAL_S
    if raw is not None:
        try:
            scrape = float(raw)
            if not (math.isfinite(scrape) and scrape >= 0):
                raise ValueError(raw)
        except ValueError:
            log.warning("%s=%r is not a number of seconds >= 0; assuming %.0f s",
                        SCRAPE_INTERVAL_ENV, raw, DEFAULT_SCRAPE_INTERVAL_S)
            scrape = DEFAULT_SCRAPE_INTERVAL_S
    return report_interval_s + scrape + SETTLE_MARGIN_S


def ray_report_interval_s() -> float:
    """How often this Ray process exports its metrics (``RAY_metrics_report_interval_ms``)."""
    import ray

    return ray._config.metrics_report_interval_ms() / 1000.0


def _ray_metrics() -> Any:
    from ray.util import metrics

    return metrics


def _timer(delay_s: float, fn: Callable[[], None]) -> None:
    timer = threading.Timer(delay_s, fn)
    timer.daemon = True
    timer.name = "rayjoule-metrics-settle"
    timer.start()


def _record_zero(counter: Any, tags: dict[str, str]) -> None:
    """Make a counter series exist at 0.

    ``Counter.inc`` refuses 0, so this records through the private method ``inc`` itself
    ends in (``Metric._record``, as of Ray 2.60); ``tests/rayjoule/metering/test_metrics.py`` and
    ``tests/rayjoule/metering/test_prometheus.py`` check against a real Ray (and Prometheus) that
    the 0 is exported, so a Ray that changes it fails there, not silently.
    """
    counter._record(0.0, tags)


class EnergyMetrics:
    """The rayjoule metrics of one process (a meter actor).

    ``factory`` is anything with ``Counter`` and ``Gauge`` constructors shaped like
    ``ray.util.metrics`` (tests pass fakes); ``settle_s`` is how long a new series
    stays at 0 before its first increment (module docstring), with ``clock`` and
    ``defer(delay_s, fn)`` (a daemon timer by default) as seams for tests.

    >>> m = EnergyMetrics(settle_s=21.0)                                    # doctest: +SKIP
    >>> m.open_window("pi", "ray", host, label, ["package-0"])  # at start  # doctest: +SKIP
    >>> m.record_window("pi", "ray", window)                    # at stop   # doctest: +SKIP
    """

    def __init__(self, factory: Any | None = None, *, settle_s: float = 0.0,
                 clock: Callable[[], float] = time.monotonic,
                 defer: Defer | None = None) -> None:
        f = factory or _ray_metrics()
        self.settle_s = float(settle_s)
        self._clock = clock
        self._defer = defer or _timer
        self._lock = threading.Lock()
        #: when each series was made to exist (at 0): its first increment waits settle_s
        self._born: dict[SeriesKey, float] = {}
        #: run-power series (sorted tags) → the mean watts of its latest window
        self._run_watts: dict[tuple[tuple[str, str], ...], float] = {}
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
        self.tasks = f.Counter(
            check_metric_name(TASKS),
            description="Tasks of rayjoule runs whose energy was attributed.",
            tag_keys=RUN_TAGS,
        )
        self.task_energy_bucket = f.Counter(
            check_metric_name(TASK_ENERGY_BUCKET),
            description="Tasks whose attributed energy was at most le joules (cumulative "
                        "histogram buckets; le=+Inf counts every task).",
            tag_keys=BUCKET_TAGS,
        )
        self.power = f.Gauge(
            check_metric_name(POWER),
            description="Current power of the host per meter domain, watts.",
            tag_keys=POWER_TAGS,
        )
        self.run_power = f.Gauge(
            check_metric_name(RUN_POWER),
            description="Mean power of the host over the latest run window of the "
                        "workload (its joules / its seconds), watts.",
            tag_keys=RUN_TAGS,
        )

    def open_window(self, workload: str, framework: str, host: str, label: MeterLabel,
                    domains: Iterable[str]) -> int:
        """Make every series a run's window will add to exist at 0; return how many are new.

        Called when the window opens, so the 0 has the whole run (and the settle time)
        to reach Prometheus before the joules land.
        """
        tags = _run_tags(workload, framework, host, label)
        series = [(self.energy, {**tags, "domain": d}) for d in sorted(domains)]
        series += [(self.host_energy, tags), (self.tasks, tags)]
        series += [(self.task_energy_bucket, {**tags, "le": le}) for le in BUCKET_LABELS]
        now = self._clock()
        return sum(self._ensure(counter, t, now) for counter, t in series)

    def record_window(self, workload: str, framework: str, window: WindowEnergy) -> None:
        """Add one run window's joules to the counters (per domain and host total) and set
        the run-power gauge to the window's mean watts."""
        tags = _run_tags(workload, framework, window.host, window.meter)
        if window.seconds > 0:
            watts = window.total_j / window.seconds
            with self._lock:
                self._run_watts[tuple(sorted(tags.items()))] = watts
            self.run_power.set(watts, tags)
        adds = [(self.energy, joules, {**tags, "domain": domain})
                for domain, joules in sorted(window.by_domain.items())]
        adds.append((self.host_energy, window.total_j, tags))
        self._add(adds)

    def record_tasks(self, workload: str, framework: str, host: str, label: MeterLabel,
                     energies_j: Iterable[float]) -> int:
        """Count the tasks and their attributed joules into the buckets; return how many."""
        tags = _run_tags(workload, framework, host, label)
        energies = [float(j) for j in energies_j]
        adds = [(self.tasks, float(len(energies)), tags)]
        for boundary, le in zip((*TASK_ENERGY_BOUNDARIES_J, math.inf), BUCKET_LABELS,
                                strict=True):
            adds.append((self.task_energy_bucket, float(sum(j <= boundary for j in energies)),
                         {**tags, "le": le}))
        self._add(adds)
        return len(energies)

    def refresh_run_power(self) -> None:
        """Set every run-power series again to its latest run's watts (keeps it exported)."""
        with self._lock:
            latest = list(self._run_watts.items())
        for tags, watts in latest:
            self.run_power.set(watts, dict(tags))

    def set_power(self, host: str, label: MeterLabel, watts: Mapping[str, float]) -> None:
        for domain, w in watts.items():
            self.power.set(float(w), {"host": host, "meter": label.name, "kind": label.kind,
                                      "domain": domain})

    def _ensure(self, counter: Any, tags: dict[str, str], now: float) -> bool:
        """Record 0 on a series seen for the first time (True); remember when."""
        key = _series_key(counter, tags)
        with self._lock:
            if key in self._born:
                return False
            self._born[key] = now
        _record_zero(counter, tags)
        return True

    def _due(self, counter: Any, tags: dict[str, str]) -> float:
        """When the series may take its first increment (its 0 has been scraped)."""
        with self._lock:
            return self._born[_series_key(counter, tags)] + self.settle_s

    def _add(self, adds: Sequence[tuple[Any, float, dict[str, str]]]) -> None:
        """Increment counters now, or once the newest of their series has settled at 0.

        A series seen here first (no window opened it) is made to exist at 0 now and
        waits the full settle time. Zero joules add nothing; negative joules (a counter
        reset or wrap upstream) are logged and not exported.
        """
        now = self._clock()
        for counter, _, tags in adds:
            self._ensure(counter, tags, now)
        due = max((self._due(c, t) for c, _, t in adds), default=now)
        positive = []
        for counter, value, tags in adds:
            if value > 0:
                positive.append((counter, value, tags))
            elif value < 0:
                log.warning("negative value %.6g for %s %s not exported (counter reset or "
                            "wrap?)", value, _metric_name(counter), tags)
        if not positive:
            return
        if due > now:
            self._defer(due - now, lambda: _inc_all(positive))
        else:
            _inc_all(positive)


def _inc_all(adds: Sequence[tuple[Any, float, dict[str, str]]]) -> None:
    """Apply increments; one that fails is logged (with its traceback) and the rest still land.

    Runs in a timer thread for held-back increments, where an exception would only
    reach stderr: the measurement itself is already in the store either way.
    """
    for counter, value, tags in adds:
        try:
            counter.inc(value, tags)
        except Exception:
            log.exception("exporting %.6g to %s %s failed", value, _metric_name(counter),
                          tags)


def _metric_name(counter: Any) -> str:
    """A metric's name for log lines (Ray keeps it in ``_name``; fakes in ``name``)."""
    return str(getattr(counter, "_name", None) or getattr(counter, "name", counter))


def _series_key(counter: Any, tags: dict[str, str]) -> SeriesKey:
    return (_metric_name(counter), tuple(sorted(tags.items())))


def _run_tags(workload: str, framework: str, host: str, label: MeterLabel) -> dict[str, str]:
    return {"workload": str(workload), "framework": str(framework), "host": host,
            "meter": label.name, "kind": label.kind}
