"""Turn a RunConfig into a stored, metered, attributed RunResult.

The sequence for one ``run``: validate → start the framework → idle baseline
→ for each repeat: open the meter windows, map the chunks, close the windows,
reduce, split static/dynamic per host, attribute dynamic energy to tasks,
store. A failure still stores the run (status ``failed``, with the energy
measured so far) before raising :class:`RunFailed`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import workloads
from rayjoule.core.attribution import attribute
from rayjoule.core.config import DEFAULT_DB, RunConfig
from rayjoule.core.errors import RunFailed
from rayjoule.core.result import Energy, HostEnergy, MeterLabel, RunResult, combine_repeats
from rayjoule.frameworks import executor_for
from rayjoule.frameworks.base import OnTaskDone
from rayjoule.metering.host_meter import IdleBaseline, LocalMetering, WindowEnergy
from rayjoule.runs.store import Store

log = logging.getLogger(__name__)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


class Session:
    """An open framework + metering for one config: idle baseline once, then repeats.

    ``compare`` keeps one Session per framework open and interleaves their
    repeats; ``run`` is one Session used ``config.repeats`` times.
    """

    def __init__(self, config: RunConfig, store: Store, workload: Any | None = None,
                 study: str | None = None, trial: int | None = None) -> None:
        self.config = config.validated()
        self.workload = workload or workloads.get(self.config.workload)
        c = self.config
        self.chunks = self.workload.partition(c.tasks, c.size, c.seed, dict(c.params))
        self.store, self.study, self.trial = store, study, trial
        self._stack = ExitStack()
        self.executor = self._stack.enter_context(executor_for(self.config))
        try:
            self.metering = _metering_for(self.config)
            self._stack.callback(self.metering.close)
            self.idle = self.metering.idle(self.config.idle_seconds)
        except BaseException:
            self._stack.close()
            raise

    def run_once(self, on_task_done: OnTaskDone | None = None,
                 parent_id: str | None = None) -> RunResult:
        """One metered, attributed, stored repeat."""
        return _one_repeat(self.config, self.workload, self.chunks, self.executor,
                           self.metering, self.idle, self.store, on_task_done, parent_id,
                           self.study, self.trial)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run(
    config: RunConfig,
    *,
    db: str | Path | Store = DEFAULT_DB,
    workload: Any | None = None,
    on_task_done: OnTaskDone | None = None,
    on_start: Callable[[int], None] | None = None,
    on_repeat: Callable[[RunResult], None] | None = None,
    study: str | None = None,
    trial: int | None = None,
) -> RunResult:
    """One metered run (with ``config.repeats`` repeats) of a workload on a framework.

    ``workload`` overrides the registered one of that name (tests, custom
    workloads). ``on_start(n_tasks)`` is called before each repeat's map,
    ``on_task_done`` after each task (progress bars) and ``on_repeat(result)``
    after each stored repeat (the tuner prunes from there by raising).
    Raises ConfigError/WorkloadError/MeterError for bad input before anything
    is stored, RunFailed when the work fails (the failed run is stored).
    """
    config = config.validated()
    with ExitStack() as stack:
        store = db if isinstance(db, Store) else stack.enter_context(Store(db))
        session = stack.enter_context(Session(config, store, workload, study, trial))
        parent_id = new_run_id() if config.repeats > 1 else None
        results = []
        for _ in range(config.repeats):
            if on_start:
                on_start(len(session.chunks))
            results.append(session.run_once(on_task_done, parent_id))
            if on_repeat:
                on_repeat(results[-1])
        if parent_id is None:
            return results[0]
        combined = combine_repeats(parent_id, results)
        store.begin(parent_id, workload=config.workload, framework=config.framework,
                    config=config.to_dict(), study=study, trial=trial)
        store.finish(combined)
        return combined


def _metering_for(config: RunConfig):
    if config.framework == "ray":
        from rayjoule.metering.ray_meters import RayMetering

        return RayMetering(config.meter, config.tdp_scope, workload=config.workload,
                           framework=config.framework)
    return LocalMetering(config.meter, config.tdp_scope, pids=None)


def _one_repeat(config, wl, chunks, executor, metering, idle, store, on_task_done,
                parent_id, study, trial) -> RunResult:
    run_id = new_run_id()
    store.begin(run_id, workload=config.workload, framework=config.framework,
                config=config.to_dict(), parent_id=parent_id, study=study, trial=trial)
    started_at = time.time()
    t0 = time.monotonic()
    metering.start()
    error: BaseException | None = None
    partials: list[Any] = []
    records = []
    try:
        partials, records = executor.map(wl, chunks, on_task_done)
        summary = wl.summary(wl.reduce(partials))
    except BaseException as exc:  # stored below, then re-raised
        error = exc
        summary = {}
    wall_s = time.monotonic() - t0
    windows = metering.stop()
    hosts = _host_energy(windows, idle, wall_s, metering.label)
    dynamic = {h.host: h.energy.dynamic_j for h in hosts}
    tasks, unattributed = attribute(records, dynamic) if records else ([], dynamic)
    metering.record_tasks(tasks)  # Ray: the per-task energy histogram, exported by the meters
    hosts = [
        dataclasses.replace(h, unattributed_j=unattributed.get(h.host, 0.0))
        for h in hosts
    ]
    result = RunResult(
        run_id=run_id, workload=config.workload, framework=config.framework,
        config=config.to_dict(), wall_s=wall_s, energy=_sum_energy(hosts),
        meter=metering.label, tasks=tasks, summary=summary, hosts=hosts,
        status="ok" if error is None else "failed",
        error=None if error is None else _describe(error), started_at=started_at,
    )
    store.finish(result)
    store.add_samples(run_id, [
        (w.host, w.meter.name, w.meter.kind, t, d, j)
        for w in windows.values() for t, d, j in w.samples
    ])
    if error is not None:
        if isinstance(error, RunFailed | KeyboardInterrupt):
            raise error
        raise RunFailed(f"run {run_id} failed: {_describe(error)}") from error
    return result


def _host_energy(windows: dict[str, WindowEnergy], idle: dict[str, IdleBaseline],
                 wall_s: float, label: MeterLabel) -> list[HostEnergy]:
    hosts = []
    for host, w in sorted(windows.items()):
        base = idle.get(host, IdleBaseline(0.0, "no idle baseline for this host (joined late)"))
        static = base.watts * wall_s
        energy = Energy(w.total_j, static, w.total_j - static, dict(w.by_domain))
        hosts.append(HostEnergy(host, w.meter, energy, base.watts, base.policy))
    return hosts


def _sum_energy(hosts: list[HostEnergy]) -> Energy:
    by_domain: dict[str, float] = {}
    for h in hosts:
        for d, j in h.energy.by_domain.items():
            key = d if len(hosts) == 1 else f"{h.host}/{d}"
            by_domain[key] = by_domain.get(key, 0.0) + j
    return Energy(
        total_j=sum(h.energy.total_j for h in hosts),
        static_j=sum(h.energy.static_j for h in hosts),
        dynamic_j=sum(h.energy.dynamic_j for h in hosts),
        by_domain=by_domain,
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (KeyboardInterrupt)"
    return str(exc) if isinstance(exc, RunFailed) else f"{type(exc).__name__}: {exc}"
