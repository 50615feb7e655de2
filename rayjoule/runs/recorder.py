"""The one writer of a run's life in the store: begin → samples → ok / failed / interrupted.

Why one: a run ends in the store as ``ok``, ``failed`` (with its error) or ``interrupted``
whatever fails and wherever, and a user reads the same words for the same failure whether
the run came from ``rayjoule.run`` (:class:`~rayjoule.runs.session.Session`) or from a
measured block (:func:`rayjoule.measure`). Both hand their outcome to a :class:`RunRecorder`,
and :func:`describe_error` is the one way an error becomes the stored text.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Mapping
from typing import Any

from rayjoule.cluster.head_watch import HeadWatch, ray_reconnect_timeout_s
from rayjoule.core.errors import RayjouleError
from rayjoule.core.result import RunResult
from rayjoule.metering.host_meter import WindowEnergy
from rayjoule.runs.store import Store

log = logging.getLogger(__name__)


def describe_error(exc: BaseException | None) -> str:
    """An error as one line a user can act on (what is stored and shown).

    rayjoule's own errors are written for users and kept as they are; anything else is
    prefixed with its type, and an interruption says so.

    >>> describe_error(ValueError("boom"))
    'ValueError: boom'
    >>> describe_error(KeyboardInterrupt())
    'interrupted (KeyboardInterrupt)'
    """
    if exc is None:
        return "unknown error"
    if isinstance(exc, KeyboardInterrupt):
        return f"interrupted ({type(exc).__name__})"
    if isinstance(exc, RayjouleError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def status_of(error: BaseException | None) -> str:
    """``ok`` without an error, ``interrupted`` for Ctrl-C / SIGTERM, else ``failed``."""
    if error is None:
        return "ok"
    return "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"


class RunRecorder:
    """Records one run in a store (or nowhere, with ``store=None``).

    >>> with Store(":memory:") as store:
    ...     rec = RunRecorder(store, "r1")
    ...     rec.begin(workload="pi", framework="native", config={})
    ...     rec.finish(None, ValueError("boom"))
    ...     store.get_row("r1")["status"], store.get_row("r1")["error"]
    ('failed', 'ValueError: boom')

    :meth:`finish` is called once, with the assembled result when there is one and the
    error that ended the run when there is one. When the store refuses to write the result,
    the run is marked failed with why, the refusal is logged and raised: the caller decides
    whether it outranks the run's own error.
    """

    def __init__(self, store: Store | None, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self._head_watch: HeadWatch | None = None

    def begin(self, *, workload: str, framework: str, config: dict[str, Any],
              parent_id: str | None = None, study: str | None = None,
              trial: int | None = None) -> None:
        """Record that the run started, before any work, so a crash leaves a trace.

        A Ray run is watched for a lost head (:mod:`rayjoule.cluster.head_watch`): Ray
        ends a driver cut off from its GCS without running any ``finally``, so the run is
        stored failed before that happens; finishing it later rewrites the row.
        """
        if self.store is not None:
            self.store.begin(self.run_id, workload=workload, framework=framework,
                             config=config, parent_id=parent_id, study=study, trial=trial)
            if framework == "ray":
                self._watch_head()

    def _watch_head(self) -> None:
        ray = sys.modules.get("ray")
        if ray is None or not ray.is_initialized():
            return
        address = ray.get_runtime_context().gcs_address
        if address:
            self._head_watch = HeadWatch(address, self._head_lost).start()

    def _head_lost(self, silent_s: float) -> None:
        assert self._head_watch is not None
        self._mark(f"lost the Ray head {self._head_watch.gcs_address}: no answer for "
                   f"{silent_s:.0f} s; Ray ends a driver that cannot reach it for "
                   f"{ray_reconnect_timeout_s():g} s (RAY_gcs_rpc_server_reconnect_timeout_s)"
                   f", so the run is stored failed now (rewritten if it still finishes)",
                   "failed")

    def _unwatch_head(self) -> None:
        if self._head_watch is not None:
            self._head_watch.stop()
            self._head_watch = None

    def finish(self, result: RunResult | None, error: BaseException | None,
               windows: Mapping[str, WindowEnergy] | None = None) -> RunResult | None:
        """Store the run's final state; return the result as stored (None without one).

        With a result: the result with its status and error, its tasks and the meter
        samples of ``windows``. Without one: the run marked failed or interrupted with
        ``error``. Raises what the store raised when it could not write the result.
        """
        self._unwatch_head()
        status = status_of(error)
        if result is not None:
            result = dataclasses.replace(
                result, status=status, error=None if error is None else describe_error(error))
        if self.store is None:
            return result
        if result is None:
            self.fail(error)
            return None
        try:
            self.store.finish(result)
            self.store.add_samples(self.run_id, [
                (w.host, w.meter.name, w.meter.kind, t, d, j)
                for w in (windows or {}).values() for t, d, j in w.samples])
        except Exception as exc:
            log.error("storing run %s failed: %s", self.run_id, exc)
            self._mark(f"storing the result failed: {describe_error(exc)}", "failed")
            raise
        return result

    def fail(self, error: BaseException | None) -> None:
        """Mark the run failed (or interrupted) when no result could be assembled."""
        self._unwatch_head()
        self._mark(describe_error(error) if error is not None else "no result",
                   "interrupted" if isinstance(error, KeyboardInterrupt) else "failed")

    def _mark(self, text: str, status: str) -> None:
        """A store that cannot even mark the run is logged: the caller's error says why."""
        if self.store is None:
            return
        try:
            self.store.fail(self.run_id, text, status)
        except Exception as again:
            log.error("marking run %s %s in the store failed too: %s", self.run_id, status,
                      again)
