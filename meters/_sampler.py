"""One reusable background sampler: a daemon thread that calls a function every interval.

Why: hardware counters wrap (RAPL), processes exit between two reads (the tdp
model's process tree) and some GPUs only report instantaneous power (NVML),
so meters must look at their sources regularly even when nobody calls
``read()``. The sampler never swallows an error: the first exception raised by
the sampled function stops the thread, is recorded, and is raised again by
:meth:`Sampler.check` (which every meter calls in ``read()``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from meters._base import MeterError

log = logging.getLogger(__name__)


class SamplerFailed(MeterError):
    """The background sampler of a meter stopped on an error (the cause is chained)."""


class Sampler:
    """Call ``fn`` every ``interval_s`` seconds in a daemon thread until :meth:`stop`.

    A sampler runs once: after :meth:`stop` it cannot start again. Samplers share
    no state (each has its own thread, stop event and error), so a stopped one is
    replaced by a new ``Sampler`` at once, e.g. for the next measurement window.

    >>> calls = []
    >>> s = Sampler(lambda: calls.append(1), interval_s=0.01, name="demo")
    >>> s.start(); s.stop(); s.check()
    """

    def __init__(self, fn: Callable[[], object], interval_s: float, name: str) -> None:
        if not interval_s > 0:
            raise ValueError(f"sampler interval must be > 0 s, got {interval_s!r}")
        self._fn = fn
        self.interval_s = float(interval_s)
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def error(self) -> BaseException | None:
        """The exception that stopped the sampler, if any."""
        return self._error

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is not None:
            raise RuntimeError(f"sampler {self.name!r} already started")
        self._thread = threading.Thread(
            target=self._loop, name=f"rayjoule-{self.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the thread to stop and wait for it; safe to call more than once."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("sampler %s did not stop within %.1f s", self.name, timeout_s)

    def check(self) -> None:
        """Raise :class:`SamplerFailed` if the sampler stopped on an error."""
        if self._error is not None:
            raise SamplerFailed(
                f"background sampler {self.name!r} stopped on {type(self._error).__name__}: "
                f"{self._error}"
            ) from self._error

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._fn()
            except BaseException as exc:  # recorded and re-raised by check(), never swallowed
                self._error = exc
                # debug, not error: check() raises it to whoever reads the meter, and that
                # caller decides what the user sees (a command prints it once, in one line)
                log.debug("sampler %s stopped: %r", self.name, exc)
                return
