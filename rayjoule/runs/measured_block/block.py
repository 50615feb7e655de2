"""Meter any Ray code as it is: ``with rayjoule.measure(name) as m:`` and ``@rayjoule.measured``.

The block's code (tasks, actors, Ray Data, Tune: whatever runs as Ray tasks of this driver's
job) is neither changed nor wrapped. Around it a window opens on every physical host's meter
actor (:class:`~rayjoule.metering.ray_cluster.RayMetering`, as for ``rayjoule.run``) and the
CPU time of every Ray worker process is sampled. Afterwards Ray's task events say which task
attempts *began running* inside the block, where and when (:mod:`.task_events`); each
gets its worker's CPU time over the block (:mod:`.worker_cpu`), split by wall time among
that worker's tasks, and :func:`~rayjoule.runs.assemble.assemble` attributes every host's
energy between them and the overhead, conserving it exactly. The run is stored like any
other, through the :class:`~rayjoule.runs.recorder.RunRecorder`.

Limits (``docs/measure.md``): tasks that began before the block are left out (their energy
inside it is overhead); Ray keeps a bounded number of task events and drops some under load,
which ``result.summary`` reports; events arrive up to one report interval (1 s) late, so the
attribution waits about that long: it runs in a thread after the block (the program goes on
at once; ``result`` waits for it), or before the block is left with ``background=False``.

The events live in Ray's GCS, so they must be read before the program shuts down a Ray
instance it started itself: call ``m.wait()`` (or :func:`~.guards.wait_all`) before
``ray.shutdown()``. rayjoule never wraps ``ray.shutdown``; a block whose events could no
longer be read is stored ``failed`` with a message saying so, never silently lost. At
interpreter exit nothing is lost: the attribution threads are joined before Ray's own exit
handler runs.
Blocks neither nest nor overlap in one process: a driver's Ray work is all one job, so two
open blocks could not tell their tasks apart (a block may open while the previous one's
attribution still runs: their tasks are told apart by when they began).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rayjoule.core import interrupts
from rayjoule.core.config import DEFAULT_DB, TDP_SCOPES, RunConfig
from rayjoule.core.errors import ConfigError, RayjouleError, RunFailed
from rayjoule.core.result import RunResult
from rayjoule.metering.host_meter import IdleBaseline
from rayjoule.runs.assemble import Measured, assemble
from rayjoule.runs.measured_block import task_events, task_records, worker_cpu
from rayjoule.runs.measured_block.guards import OPEN, PENDING
from rayjoule.runs.measured_block.worker_cpu import CpuSample
from rayjoule.runs.recorder import RunRecorder, describe_error
from rayjoule.runs.store import Store

log = logging.getLogger(__name__)

DEFAULT_SETTLE_S = 5.0
#: what a block stores when Ray went away before its task events were read
SHUT_DOWN_TOO_SOON = (
    "Ray was shut down before the block's task events could be read (they live in Ray's "
    "GCS); call m.wait() or rayjoule.wait_all() before ray.shutdown(), or measure with "
    "background=False")


class Measurement:
    """One metered block of Ray code; ``result`` is its RunResult once the block has ended.

    >>> import ray, rayjoule                                            # doctest: +SKIP
    >>> with rayjoule.measure("squares", meter="tdp", db=None) as m:    # doctest: +SKIP
    ...     ray.get([square.remote(i) for i in range(100)])
    >>> m.result.energy.total_j, len(m.result.tasks)                   # doctest: +SKIP
    (41.2, 100)

    An exception inside the block stores the run as ``failed`` with what was measured and
    then propagates unchanged (``result`` holds the failed run). When the block succeeded
    but measuring it failed (a meter died, a task ran on a host no meter saw), the failed
    run is stored and :class:`~rayjoule.core.errors.RunFailed` is raised on leaving the block.
    """

    def __init__(self, name: str = "measure", *, address: str | None = None,
                 meter: str = "auto", db: str | Path | Store | None = DEFAULT_DB,
                 idle_seconds: float = 2.0, tdp_scope: str = "host",
                 settle_s: float = DEFAULT_SETTLE_S, background: bool = True,
                 idle: Mapping[str, IdleBaseline] | None = None,
                 study: str | None = None, trial: int | None = None) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"measure() needs a non-empty name, got {name!r}")
        for label, value in (("idle_seconds", idle_seconds), ("settle_s", settle_s)):
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{label} must be a number >= 0, got {value!r}")
        if not isinstance(meter, str) or not meter:
            raise ConfigError(f"meter must be a meter name or 'auto', got {meter!r}")
        if tdp_scope not in TDP_SCOPES:
            raise ConfigError(f"tdp_scope must be one of {', '.join(TDP_SCOPES)}, "
                              f"not {tdp_scope!r}")
        if db is not None and not isinstance(db, str | Path | Store):
            raise ConfigError(f"db must be a path, a Store or None, got {type(db).__name__}")
        if not isinstance(background, bool):
            raise ConfigError(f"background must be True or False, got {background!r}")
        self.name, self.address, self.meter, self.db = name, address, meter, db
        self.idle_seconds, self.tdp_scope, self.settle_s = idle_seconds, tdp_scope, settle_s
        #: host → idle baseline; given, it is reused (hosts it lacks are measured)
        self.idle: dict[str, IdleBaseline] = dict(idle or {})
        self._job_id = ""
        #: the tuning study and trial this block is a run of (stored with it)
        self.study, self.trial = study, trial
        self.run_id = uuid.uuid4().hex[:12]
        #: seconds each phase of measuring took (connect, meters, idle, start, stop, settle, …)
        self.phases_s: dict[str, float] = {}
        self._state = "new"
        self._result: RunResult | None = None
        self._error: BaseException | None = None
        self._stack = ExitStack()
        #: attribute after the block in a thread of its own
        self.background = background
        self._finisher: threading.Thread | None = None
        self._late_failure: BaseException | None = None

    @property
    def result(self) -> RunResult:
        """The block's RunResult (status ``ok`` or ``failed``), available once it has ended.

        Reading it waits for the attribution that runs after the block (about one Ray
        task-event report interval, bounded by ``settle_s``); a failure found there (a task
        on a host no meter saw, the store refusing the write) is raised here as RunFailed.
        """
        if self._state != "done":
            raise RayjouleError(f"measure({self.name!r}) has no result yet: the block "
                                f"{'is still open' if self._state == 'open' else 'never ran'}")
        if self._finisher is not None:
            self._finisher.join()
        if self._late_failure is not None:
            raise RunFailed(f"measuring {self.name!r} (run {self.run_id}) failed after the "
                            f"block: {describe_error(self._late_failure)}") from self._late_failure
        if self._result is None:
            raise RunFailed(f"measuring {self.name!r} failed before a result could be "
                            f"assembled: {describe_error(self._error)}")
        return self._result

    @property
    def config(self) -> dict[str, Any]:
        """What is stored as the run's config."""
        return {"name": self.name, "measure": True, "framework": "ray", "meter": self.meter,
                "tdp_scope": self.tdp_scope, "idle_seconds": self.idle_seconds,
                "address": self.address, "settle_s": self.settle_s,
                "background": self.background}

    # -- entering ------------------------------------------------------------------
    def __enter__(self) -> Measurement:
        if self._state != "new":
            raise RayjouleError(f"measure({self.name!r}) has already run; a Measurement is "
                                "used once (call rayjoule.measure() again)")
        interrupts.raise_if_requested()  # a stop whose exception Python lost on the way
        OPEN.claim(self.name)
        self._recorder = RunRecorder(None, self.run_id)
        try:
            self._open()
        except BaseException:
            if getattr(self, "_metering", None) is not None:
                self._metering.close()
            self._stack.close()
            OPEN.release()
            raise
        self._state = "open"
        return self

    def _open(self) -> None:
        import ray

        from rayjoule.cluster.connect import connect
        from rayjoule.metering.ray_cluster import RayMetering

        tick = _phases(self.phases_s)
        if isinstance(self.db, Store):
            store: Store | None = self.db
        else:
            store = None if self.db is None else self._stack.enter_context(Store(self.db))
        self._recorder = RunRecorder(store, self.run_id)
        if ray.is_initialized() and self.address:
            log.info("Ray is already initialised; measure(address=%s) uses that connection",
                     self.address)
        connect(self.address)  # an instance started here stays up: refs made inside stay usable
        context = ray.get_runtime_context()
        self._job_id = self._job_id or context.get_job_id()
        self._gcs_address = context.gcs_address
        tick("connect")
        self._metering = RayMetering(self.meter, self.tdp_scope, workload=self.name)
        self._node_host = {n: h for h, ids in self._metering.node_hosts.items() for n in ids}
        tick("meters")
        missing = set(self._metering.node_hosts) - set(self.idle)
        if missing:
            measured = self._metering.idle(self.idle_seconds)
            self.idle.update({h: measured[h] for h in missing})
        self._idle = {h: self.idle[h] for h in self._metering.node_hosts}
        tick("idle")
        self._recorder.begin(workload=self.name, framework="ray", config=self.config,
                             study=self.study, trial=self.trial)
        try:
            probes = worker_cpu.submit_cpu_probes(self._node_host)
            self._metering.name_run(self.run_id)
            self._metering.start()
            self._before = worker_cpu.collect_cpu(probes)
        except BaseException as exc:
            self._recorder.fail(exc)
            raise
        self._t_start, self._t0 = time.time(), time.monotonic()
        tick("start")

    def attribute_job(self, job_id: str) -> None:
        """Attribute the tasks of Ray job ``job_id`` instead of this driver's own.

        For a program run by a driver of its own (a child process that calls
        ``ray.init()`` itself) while this process meters the window; call it before the
        block is left (``job_id`` as ``ray.get_runtime_context().get_job_id()`` gives it).
        """
        if not isinstance(job_id, str) or not job_id:
            raise ConfigError(f"attribute_job needs a Ray job id, got {job_id!r}")
        if self._state == "done":
            raise RayjouleError(f"measure({self.name!r}) has ended; attribute_job() must be "
                                "called inside the block")
        self._job_id = job_id

    # -- leaving -------------------------------------------------------------------
    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        t_end, wall_s, ended_at = time.time(), time.monotonic() - self._t0, time.monotonic()
        m = Measured(run_id=self.run_id, config=self._run_config(), started_at=self._t_start,
                     wall_s=wall_s, error=exc)
        failure: BaseException | None = None
        deferred = False
        try:
            after, failure = self._close_windows(m)
            if exc is None and failure is None and self.background:
                self._finisher = threading.Thread(
                    target=self._finish_later, args=(m, after, t_end, ended_at),
                    name=f"rayjoule-measure-{self.run_id}")
                PENDING.add(self._finisher)
                self._finisher.start()
                deferred = True
            else:
                failure = self._finish(m, after, exc or failure, t_end, ended_at,
                                       attribute=failure is None)
        finally:
            self._state = "done"
            if not deferred:
                self._metering.close()
                self._stack.close()
            OPEN.release()
        if exc is None and failure is not None:
            if isinstance(failure, KeyboardInterrupt | RunFailed):
                raise failure
            raise RunFailed(f"measuring {self.name!r} (run {self.run_id}) failed: "
                            f"{describe_error(failure)}") from failure
        return False  # the block's own exception, if any, propagates unchanged

    def _close_windows(self, m: Measured) -> tuple[dict[str, CpuSample],
                                                   BaseException | None]:
        """Close every host's window and sample the workers' CPU time: the block's edge."""
        from rayjoule.cluster.connect import alive_nodes

        tick = _phases(self.phases_s)
        try:
            refs = worker_cpu.submit_cpu_probes([n["NodeID"] for n in alive_nodes()])
            m.windows = self._metering.stop()
            after = worker_cpu.collect_cpu(refs)
        except BaseException as error:
            return {}, error
        tick("stop")
        return after, None

    def _finish_later(self, m: Measured, after: dict[str, CpuSample],
                      t_end: float, ended_at: float) -> None:
        """The block has ended: wait for Ray's task events, attribute and store, off the
        program's path; then close what the block opened (its store included)."""
        try:
            failure = self._finish(m, after, None, t_end, ended_at)
            if failure is not None:
                self._late_failure = failure
                log.error("measuring %r (run %s) failed after the block: %s", self.name,
                          self.run_id, describe_error(failure))
        finally:
            self._metering.close()
            self._stack.close()
            PENDING.done(threading.current_thread())

    def wait(self, timeout: float | None = None) -> RunResult:
        """Wait for the block's result (at most ``timeout`` s) and return it, like ``result``.

        Call it before ``ray.shutdown()`` of a Ray instance the program started: the
        block's task events are read from that instance.
        """
        if self._finisher is not None:
            self._finisher.join(timeout)
            if self._finisher.is_alive():
                raise TimeoutError(f"measure({self.name!r}) is still attributing after "
                                   f"{timeout:g} s")
        return self.result

    def _finish(self, m: Measured, after: dict[str, CpuSample],
                error: BaseException | None, t_end: float, ended_at: float,
                attribute: bool = True) -> BaseException | None:
        """Attribute (unless the windows could not be closed) and store; return the
        measuring error (None when all went well)."""
        tick = _phases(self.phases_s)
        m.error = error
        failure: BaseException | None = None
        result = None
        if attribute:
            try:
                result = self._attribute(m, after, t_end, ended_at, tick)
            except BaseException as err:
                failure = err
        try:
            if result is not None:
                result = dataclasses.replace(result, config=self.config)
            self._result = self._recorder.finish(result, error or failure, m.windows)
        except Exception as err:  # the store itself failed; the block's own error wins
            failure = failure or err
        self._error = error or failure
        tick("store")
        return failure

    def _attribute(self, m: Measured, after: dict[str, CpuSample], t_end: float,
                   ended_at: float, tick: Callable[[str], None]) -> RunResult:
        """Read the block's task events once they have arrived, and attribute the energy."""
        import ray

        reader = task_events.EventReader(self._job_id, self._gcs_address)
        try:
            batch, settled = task_events.settle(
                lambda: reader.read(since=self._t_start), self._t_start, t_end,
                ended_at=ended_at, interval_s=task_events.report_interval_s(),
                limit_s=self.settle_s)
        except Exception as exc:
            if not ray.is_initialized():  # the program shut Ray down: say what to do
                raise RunFailed(SHUT_DOWN_TOO_SOON) from exc
            raise
        finally:
            reader.close()
        tick("settle")
        chosen = task_events.select(batch.events, self._t_start, t_end, batch.ended_before)
        m.records, basis = task_records.records(chosen, batch, self._before, after,
                                                self._node_host, self._t_start)
        m.summary = task_records.summary(self.name, chosen, batch, settled, basis,
                                         self.phases_s)
        result = assemble(m, self._idle, self._metering.label, self._metering.host_info,
                          task_records.job_of(m.records))
        if ray.is_initialized():  # exporting needs the meter actors; never restart Ray
            self._metering.record_tasks(result.tasks)
        tick("assemble")
        return result

    def _run_config(self) -> RunConfig:
        """A RunConfig naming the block (never validated: the block is no registered workload)."""
        return RunConfig(workload=self.name, framework="ray", meter=self.meter,
                         idle_seconds=self.idle_seconds, address=self.address,
                         tdp_scope=self.tdp_scope)


def measure(name: str = "measure", *, address: str | None = None, meter: str = "auto",
            db: str | Path | Store | None = DEFAULT_DB, idle_seconds: float = 2.0,
            tdp_scope: str = "host", settle_s: float = DEFAULT_SETTLE_S,
            background: bool = True,
            idle: Mapping[str, IdleBaseline] | None = None) -> Measurement:
    """Meter the Ray code inside a ``with`` block; see :class:`Measurement`.

    ``address`` joins a cluster when Ray is not initialised yet (an instance already
    initialised by the caller is reused and left running). ``meter`` is a meter name or
    ``auto``; ``db`` a results-store path, a :class:`~rayjoule.runs.store.Store`, or None
    to keep nothing; ``idle_seconds`` is how long idle power is measured before the block
    (measured meters only); ``settle_s`` bounds the wait for Ray's task events afterwards.
    With ``background`` (the default) leaving the block closes the meter windows and
    returns at once; the wait for the events, the attribution and the store write go on in
    a thread, and ``result`` waits for them. ``background=False`` does it all before the
    block is left. ``idle`` (host → baseline, e.g. a previous block's ``m.idle``) reuses
    idle baselines instead of measuring them again (a tuner's trials share one).

    Before ``ray.shutdown()`` of a Ray instance the program started itself, call
    ``m.wait()`` (or ``rayjoule.wait_all()``): the task events are read from that
    instance's GCS. rayjoule never wraps ``ray.shutdown``; a block whose events were gone
    is stored ``failed`` with a message saying so (``result`` raises it), never lost
    silently. Any number of blocks may run one after another in one process (a tuner's
    trials); each is attributed in its own thread. Raises
    :class:`~rayjoule.core.errors.ConfigError` for bad arguments
    (before anything runs) and :class:`~rayjoule.core.errors.RayjouleError` when another
    block is open.
    """
    return Measurement(name, address=address, meter=meter, db=db, idle_seconds=idle_seconds,
                       tdp_scope=tdp_scope, settle_s=settle_s, background=background,
                       idle=idle)


def _phases(into: dict[str, float]) -> Callable[[str], None]:
    """``tick(phase)`` records the seconds since the previous tick under ``phase``."""
    last = [time.perf_counter()]

    def tick(phase: str) -> None:
        now = time.perf_counter()
        into[phase], last[0] = now - last[0], now

    return tick

