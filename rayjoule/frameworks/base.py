"""The executor contract every framework implements, and the stage loop of store-based ones.

The contract is :class:`Executor`'s docstring; :class:`rayjoule.testing.ExecutorContract`
is the suite that proves an implementation (built-in or registered by a third party under
the ``rayjoule.frameworks`` entry-point group) keeps it.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from rayjoule.core.config import RunConfig
from rayjoule.core.result import TaskRecord
from rayjoule.frameworks.job import Job, JobOutput, OnTaskDone, StagePlan
from rayjoule.frameworks.task import run_stored_task, sink_outputs, stored_inputs


class Executor(ABC):
    """Runs a job's stages on one framework.

    A session calls, in this order and nothing else:

    * ``Executor(config)``: store the validated :class:`RunConfig`; start nothing.
    * :meth:`open` once (through ``with``): connect to the framework. Not metered, so
      keep it cheap; raise :class:`~rayjoule.core.errors.ConfigError` (or another
      :class:`~rayjoule.core.errors.RayjouleError`) when the framework is unusable.
    * :meth:`check` once with the job: refuse what could never run here (a stage asking
      more CPUs than exist) with ``ConfigError``, before any run is stored.
    * :attr:`remote`: read once to choose the metering (see
      :func:`rayjoule.metering.choose.metering_for`).
    * :meth:`run` once per repeat, inside the meter window. Pools, workers and actors
      start inside the first ``run`` — so a framework's start-up energy is measured —
      and stay warm for later repeats. It returns the sinks' outputs and one
      :class:`TaskRecord` per task (made by
      :func:`rayjoule.frameworks.task.run_task`, so records mean the same on every
      framework), calling ``on_done`` once per task as it completes. A task that raises
      or a worker that dies ends it with :class:`~rayjoule.core.errors.RunFailed` naming
      the stage and task; an interrupt propagates as ``KeyboardInterrupt``. After a
      failed ``run`` the executor is still usable: the next ``run`` starts what died.
    * :meth:`close` at the end, also after a failure; idempotent, and it leaves nothing
      running that ``open`` or ``run`` started (unless the config keeps it alive).
    """

    #: the framework's registered name (``RunConfig.framework``)
    name: str = ""

    def __init__(self, config: RunConfig) -> None:
        self.config = config

    def open(self) -> None:  # noqa: B027 - optional hook
        """Connect to the framework (not metered; keep it cheap)."""

    def check(self, job: Job) -> None:  # noqa: B027 - optional hook
        """Raise ``ConfigError`` when ``job`` can never run here; called after :meth:`open`.

        The default accepts every job.
        """

    @property
    def remote(self) -> bool:
        """True when tasks run on machines the driver's meters cannot see, so each call
        meters itself (``meters.CallMeter``); False (the default) when the driver's host
        or the cluster's meter actors see the work."""
        return False

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what ``open`` and ``run`` started; safe to call more than once."""

    @abstractmethod
    def run(self, job: Job, on_done: OnTaskDone | None = None) -> JobOutput:
        """Run every stage of ``job``; return the sinks' outputs and every task's record."""

    def __enter__(self) -> Executor:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: runs one stage's tasks: (the task function, one argument tuple per task) → (output, record)s
StageRunner = Callable[[Callable[..., Any], list[tuple[Any, ...]], StagePlan],
                       Sequence[tuple[Any, dict[str, Any]]]]


class StoredStagesExecutor(Executor):
    """An executor whose stages exchange data through a ``workloads.DataStore``.

    Native pools and Lithops run one stage at a time; a stage's outputs are written to the
    store by the workers that made them and read by the next stage's workers, never
    shipped through the driver. Only the sinks' outputs come back. A single-stage job
    touches the store not at all.
    """

    def __init__(self, config: RunConfig) -> None:
        super().__init__(config)
        self._store: Any = None
        self._own_folder: str | None = None

    def data_store(self, job: Job) -> Any:
        """The job's data store, or a private temporary folder removed on close."""
        if self._store is None:
            from workloads import DataStore

            if job.data_store:
                self._store = DataStore.from_uri(job.data_store)
            else:
                self._own_folder = tempfile.mkdtemp(prefix="rayjoule-data-")
                self._store = DataStore.from_uri(self._own_folder)
        return self._store

    def run_stages(self, job: Job, run_stage: StageRunner,
                   on_done: OnTaskDone | None) -> JobOutput:
        store = self.data_store(job) if len(job.stages) > 1 else None
        prefix = f"run-{uuid.uuid4().hex[:12]}"
        handles: dict[str, list[Any]] = {}
        records: list[TaskRecord] = []
        try:
            for stage in job.stages:
                args = [(job.pipeline, stage, job.context(stage, i),
                         stored_inputs(stage, i, handles), store, prefix)
                        for i in range(stage.tasks)]
                outputs = run_stage(run_stored_task, args, stage)
                handles[stage.name] = [out for out, _ in outputs]
                stage_records = [TaskRecord(**rec) for _, rec in outputs]
                records.extend(stage_records)
                if on_done:
                    for record in stage_records:
                        on_done(record)
            sinks = {s.name: sink_outputs(store, s, handles[s.name])
                     for s in job.stages if s.sink}
        finally:
            if store is not None:
                store.delete_prefix(prefix)
        return JobOutput(sinks, records)

    def close(self) -> None:
        if self._own_folder is not None:
            shutil.rmtree(self._own_folder, ignore_errors=True)
            self._own_folder = None
        self._store = None
