"""One metered call of a user's program: ``fn(**settings)`` inside a measured block.

Why apart from the tuner: trials and the side-by-side re-run both call the program the
same way. ``inline`` calls it in this process (its tasks are this driver's Ray job);
``process`` runs it in a child driver (:mod:`.program_driver`) for programs that call
``ray.init()`` themselves. Every call is a stored, attributed run (stages = Ray task
names); the idle baseline is measured by the first call and reused by the rest.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from rayjoule.core.errors import RunFailed
from rayjoule.core.result import RunResult
from rayjoule.runs.store import Store
from rayjoule.tuning.program_driver import ChildDriver
from rayjoule.tuning.program_loading import Program

log = logging.getLogger(__name__)


@dataclass
class Call:
    """A call's outcome: its run (None if measuring never began), the program's error."""

    run: RunResult | None
    error: str | None
    #: seconds the program itself ran (in a child: from its start to its report)
    program_s: float
    run_id: str

    @property
    def ok(self) -> bool:
        return self.error is None and self.run is not None and self.run.status == "ok"

    @property
    def total_j(self) -> float:
        assert self.run is not None
        return self.run.energy.total_j

    @property
    def stages(self) -> dict[str, float]:
        """Joules per stage (Ray task name), as measured."""
        return {} if self.run is None else {s.name: s.energy.total_j for s in self.run.stages}


@dataclass
class ProgramCaller:
    """Calls the program, metered, one call at a time (the meters see whole hosts)."""

    program: Program
    driver: str  # "inline" or "process"
    store: Store
    meter: str = "auto"
    idle_seconds: float = 2.0
    tdp_scope: str = "host"
    idle: dict[str, Any] = field(default_factory=dict)
    ray_address: str = ""

    def call(self, settings: dict[str, Any], *, study: str | None = None,
             trial: int | None = None, label: str = "") -> Call:
        """Run the program once with ``settings``; a program error is returned, not raised.

        Raises RunFailed when measuring itself failed and KeyboardInterrupt unchanged.
        """
        from rayjoule.runs.measured_block import Measurement

        m = Measurement(f"program:{self.program.name}{label}", meter=self.meter, db=self.store,
                        idle_seconds=self.idle_seconds, tdp_scope=self.tdp_scope,
                        background=False, idle=self.idle or None, study=study, trial=trial)
        error: str | None = None
        program_s = 0.0
        child: ChildDriver | None = None
        stopping = False
        try:
            with m:
                t0 = time.perf_counter()
                if self.driver == "inline":
                    try:
                        self.program.fn(**settings)
                    finally:
                        program_s = time.perf_counter() - t0
                else:
                    child = self._start_child(settings)
                    self._await_child(m, child)
                    program_s = time.perf_counter() - t0
        except ProgramError as exc:
            error = str(exc)
        except RunFailed:
            raise
        except KeyboardInterrupt:
            stopping = True
            raise
        except Exception as exc:  # the program's own failure: the block stored it failed
            error = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
        finally:
            # only now, with the block closed and its tasks attributed: the child's job
            # (its workers and its driver's unsent task events) ends with the child
            if child is not None:
                child.release(stopping=stopping)
        self.idle = dict(m.idle) or self.idle
        try:
            run = m.result
        except RunFailed:
            if error is None:
                raise
            run = None
        return Call(run, error, program_s, m.run_id)

    def warm_up(self, settings: dict[str, Any]) -> None:
        """One unmeasured call at ``settings`` before the first measured one (inline only).

        Why: Ray starts a job's worker processes on first use (and Ray Data its actor
        pools' workers), which the first call of a tune pays and no later call does — the
        example's first Ray Data run took 29-32 s against ~12 s after it. Without this the
        defaults' trial, always the first, would look dearer than the defaults are. A child
        driver is a new Ray job every call, so each of its calls pays the same start-up.
        A failure here is logged and left to the measured call, which stores it.
        """
        if self.driver != "inline":
            return
        t0 = time.perf_counter()
        try:
            self.program.fn(**settings)
        except Exception as exc:
            log.warning("the unmeasured warm-up call failed (%s: %s); the first trial "
                        "will measure and store it", type(exc).__name__, exc)
        log.info("warm-up call: %.1f s (not measured)", time.perf_counter() - t0)

    def _start_child(self, settings: dict[str, Any]) -> ChildDriver:
        if not self.program.spec:
            raise ProgramError("a program run in its own driver process must be importable: "
                               "pass it as 'package.module:FUNCTION' or 'file.py:FUNCTION'")
        return ChildDriver(self.program.spec, settings, self.ray_address, self.program.folder)

    def _await_child(self, m: Any, child: ChildDriver) -> None:
        """Wait for the child's program; point the block at the child's Ray job."""
        outcome = child.wait_for_program()
        job_id = outcome.job_id or child.job_id_by_pid()
        if job_id:
            m.attribute_job(job_id)
        if not outcome.ok:
            raise ProgramError(outcome.error or "the program failed")
        if not job_id:
            log.warning("the program's driver ran no Ray job: its energy is overhead")


class ProgramError(Exception):
    """The program (in a child driver) raised: its one-line error."""
