"""One metered run: validate → meter → run the stages → attribute → store.

A :class:`Session` holds an open framework and its meters for one config (the idle
baseline is measured once); :meth:`Session.run_once` is one metered, attributed, stored
repeat. ``compare`` keeps one Session per framework open and interleaves their repeats;
:func:`run` is one Session used ``config.repeats`` times.

The failure contract: once a run's row exists, one ``try/finally`` always writes its final
state through the :class:`~rayjoule.runs.recorder.RunRecorder` — ``ok``, ``failed`` with
the error (a task raised, a worker or a meter died, energy that cannot be attributed), or
``interrupted`` (Ctrl-C, SIGTERM) — with whatever energy was measured until then.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import workloads
from rayjoule.core import interrupts
from rayjoule.core.config import DEFAULT_DB, RunConfig
from rayjoule.core.errors import ConfigError, RunFailed
from rayjoule.core.estimate import check_records_fit, estimated_cpu_s
from rayjoule.core.result import RunResult, combine_repeats
from rayjoule.frameworks import executor_for
from rayjoule.frameworks.job import Job, OnTaskDone, plan_job
from rayjoule.metering.choose import metering_for
from rayjoule.runs.assemble import Measured, assemble
from rayjoule.runs.recorder import RunRecorder, describe_error
from rayjoule.runs.store import Store

log = logging.getLogger(__name__)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def resolve_pipeline(config: RunConfig, workload: Any | None = None) -> Any:
    """The pipeline a config names, or ``workload`` (a Workload or Pipeline object) itself."""
    if workload is None:
        return workloads.get_pipeline(config.workload)
    if isinstance(workload, workloads.Workload):
        return workloads.as_pipeline(workload)
    return workload


class Session:
    """An open framework and metering for one config: idle baseline once, then repeats.

    Everything that can be checked is checked here, before any run is stored: the config,
    the pipeline's stages and settings, the data store, the cluster's CPUs, the meters.
    """

    def __init__(self, config: RunConfig, store: Store, workload: Any | None = None,
                 study: str | None = None, trial: int | None = None) -> None:
        self.config = config.validated()
        c = self.config
        self.pipeline = resolve_pipeline(c, workload)
        self.tasks_by_stage, self.cpus_by_stage = c.stage_settings(self.pipeline)
        check_feasible(c, self.tasks_by_stage)  # before planning: planning is per task
        self.job: Job = plan_job(self.pipeline, c.size, c.seed, dict(c.params),
                                 self.tasks_by_stage, self.cpus_by_stage, c.data_store)
        if c.data_store and len(self.job.stages) > 1:
            workloads.DataStore.from_uri(c.data_store).check()
        self.store, self.study, self.trial = store, study, trial
        self._stack = ExitStack()
        try:
            self.executor = self._stack.enter_context(executor_for(c))
            self.executor.check(self.job)
            self.metering = metering_for(c, remote_calls=self.executor.remote)
            self._stack.callback(self.metering.close)
            self.idle = self.metering.idle(c.idle_seconds)
        except BaseException:
            self._stack.close()
            raise

    @property
    def n_tasks(self) -> int:
        return self.job.n_tasks

    def run_once(self, on_task_done: OnTaskDone | None = None,
                 parent_id: str | None = None) -> RunResult:
        """One metered, attributed, stored repeat; raises RunFailed when the work failed.

        A stop the user asked for (Ctrl-C, SIGTERM) whose exception Python lost is raised
        here, before anything is stored (:mod:`rayjoule.core.interrupts`).
        """
        interrupts.raise_if_requested()
        c = self.config
        run_id = new_run_id()
        recorder = RunRecorder(self.store, run_id)
        recorder.begin(workload=c.workload, framework=c.framework, config=c.to_dict(),
                       parent_id=parent_id, study=self.study, trial=self.trial)
        m = Measured(run_id=run_id, config=c, started_at=time.time())
        result: RunResult | None = None
        t0 = time.monotonic()
        try:
            self.metering.name_run(run_id)
            self.metering.start()
            try:
                output = self.executor.run(self.job, on_task_done)
                m.records = output.records
                m.summary = self.pipeline.summary(output.sinks)
                interrupts.raise_if_requested()  # a stop asked during the run, lost by Python
            except BaseException as exc:
                m.error = exc
            m.wall_s = time.monotonic() - t0
            try:
                m.windows = self.metering.stop()
            except BaseException as exc:
                m.error = m.error or exc
            result = assemble(m, self.idle, self.metering.label, self.metering.host_info,
                              self.job)
            self.metering.record_tasks(result.tasks)  # Ray: the per-task energy histogram
        except BaseException as exc:
            m.error = m.error or exc
        finally:
            try:
                result = recorder.finish(result, m.error, m.windows)
            except Exception as exc:  # the store refused; the run's own error wins
                m.error = m.error or exc
        if m.error is not None:
            if isinstance(m.error, KeyboardInterrupt | RunFailed):
                raise m.error
            raise RunFailed(f"run {run_id} failed: {describe_error(m.error)}") from m.error
        assert result is not None
        return result

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
    """One metered run (with ``config.repeats`` repeats) of a workload or pipeline.

    ``workload`` overrides the registered one of that name (tests, user objects).
    ``on_start(n_tasks)`` is called before each repeat, ``on_task_done`` as tasks finish
    (progress bars) and ``on_repeat(result)`` after each stored repeat (the tuner prunes
    from there by raising). Raises ConfigError/WorkloadError/MeterError for bad input
    before anything is stored, RunFailed when the work fails (the failed run is stored).
    """
    config = config.validated()
    check_run_feasible(config, workload)  # before the store: bad input creates no file
    with ExitStack() as stack:
        store = db if isinstance(db, Store) else stack.enter_context(Store(db))
        session = stack.enter_context(Session(config, store, workload, study, trial))
        parent_id = new_run_id() if config.repeats > 1 else None
        results = []
        for _ in range(config.repeats):
            if on_start:
                on_start(session.n_tasks)
            results.append(session.run_once(on_task_done, parent_id))
            if on_repeat:
                on_repeat(results[-1])
        if parent_id is None:
            return results[0]
        combined = combine_repeats(parent_id, results)
        recorder = RunRecorder(store, parent_id)
        recorder.begin(workload=config.workload, framework=config.framework,
                       config=config.to_dict(), study=study, trial=trial)
        stored = recorder.finish(combined, None)
        assert stored is not None
        return stored


#: the least wall time one run costs on top of its work (process pool, metering, store
#: writes): a tiny native ``pi`` run took ≈ 0.1 s on the 2-vCPU VM, so 0.05 s is a floor,
#: and it is what bounds many runs whose work estimate is ~0 (or unknown)
RUN_FLOOR_S = 0.05


def estimated_run_s(config: RunConfig, tasks_by_stage: Mapping[str, int]) -> float:
    """One run's estimated wall seconds: its work over the tasks at once, plus the floor."""
    cpu_s, parallel = estimated_work(config, tasks_by_stage) or (0.0, 1)
    return cpu_s / parallel + RUN_FLOOR_S


def check_runs_hours(total_s: float, max_hours: float, runs: str, fewer: str) -> None:
    """Refuse, before the first of them, many runs (a design, repeats, a comparison) whose
    estimated seconds together pass ``max_hours``: each run's own check is per run, and
    ``--repeats 10**9`` of a short run would otherwise go on for ever, a run at a time.
    ``runs`` names them ("3 repeats"), ``fewer`` says how to ask for less."""
    hours = total_s / 3600
    if hours > max_hours:
        raise ConfigError(
            f"{runs} are estimated to take ≈ {hours:.3g} h (at least {RUN_FLOOR_S:g} s a "
            f"run); {fewer}, or pass --max-hours {hours * 1.5:.2g} to run them anyway")


def check_run_feasible(config: RunConfig, workload: Any | None = None) -> dict[str, int]:
    """A config's checks that need no framework, with all its repeats together (the
    stages and settings, the tasks' records, the size estimate); its tasks by stage.
    :func:`run` makes them before it opens the store, so they leave no file behind."""
    tasks_by_stage, _ = config.stage_settings(resolve_pipeline(config, workload))
    check_feasible(config, tasks_by_stage)
    check_runs_hours(config.repeats * estimated_run_s(config, tasks_by_stage),
                     config.max_hours, f"{config.repeats} repeats",
                     "use fewer --repeats or a smaller --size")
    return tasks_by_stage


def estimated_work(config: RunConfig, tasks_by_stage: Mapping[str, int]
                   ) -> tuple[float, int] | None:
    """(estimated CPU seconds of the run's work, tasks running at once), or None where the
    workload has no estimate: the wall seconds are their quotient."""
    cpu_s = estimated_cpu_s(config.workload, config.size, config.params)
    if cpu_s is None:
        return None
    return cpu_s, max(1, min(config.concurrency or 1, max(tasks_by_stage.values())))


def check_feasible(config: RunConfig, tasks_by_stage: dict[str, int]) -> None:
    """Refuse, before any work, a run whose bookkeeping would not fit in memory or that is
    estimated to run longer than ``config.max_hours`` (DESIGN.md: never grow until the
    kernel kills the process, never run for hours unasked)."""
    check_records_fit(sum(tasks_by_stage.values()))
    work = estimated_work(config, tasks_by_stage)
    if work is None:
        return
    cpu_s, parallel = work
    hours = cpu_s / parallel / 3600
    if hours > config.max_hours:
        raise ConfigError(
            f"{config.workload} at size {config.size:g} is estimated to run ≈ {hours:.3g} h "
            f"({cpu_s:.3g} CPU-s over {parallel} parallel tasks, measured on a 2-vCPU VM); "
            f"pass --max-hours {hours * 1.5:.2g} (or RAYJOULE_MAX_HOURS) to run it anyway")

