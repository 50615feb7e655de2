"""Process-wide bookkeeping of measured blocks: one open at a time, and the ones whose
attribution still runs in the background (so a program can wait for them).

Nothing here touches Ray: rayjoule never wraps ``ray.shutdown`` or any other function of
another library. A program that shuts down a Ray instance it started waits first with
``m.wait()`` or :func:`wait_all`.
"""

from __future__ import annotations

import threading

from rayjoule.core.errors import RayjouleError


class _OpenBlock:
    """The one measure() block this process may have open (a private lock, not user state)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.name: str | None = None

    def claim(self, name: str) -> None:
        if not self._lock.acquire(blocking=False):
            raise RayjouleError(f"measure() blocks cannot nest or overlap; one is already open "
                                f"(name {self.name!r}). Close it first: a driver's Ray tasks "
                                "all belong to one job, so two blocks could not tell theirs apart")
        self.name = name

    def release(self) -> None:
        self.name = None
        self._lock.release()


OPEN = _OpenBlock()


class _Pending:
    """The measured blocks whose attribution still runs in a thread of its own.

    The threads are not daemons: at interpreter exit Python joins them before any ``atexit``
    handler runs (Ray's own shutdown is one), so a program that simply ends loses nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()

    def add(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.add(thread)

    def done(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.discard(thread)

    def wait_all(self, timeout: float | None = None) -> int:
        """Join every pending attribution (each at most ``timeout`` s); how many remain."""
        with self._lock:
            pending = [t for t in self._threads if t is not threading.current_thread()]
        for thread in pending:
            thread.join(timeout)
        return sum(t.is_alive() for t in pending)


PENDING = _Pending()


def wait_all(timeout: float | None = None) -> None:
    """Wait until every measured block of this process is attributed and stored.

    Call it before ``ray.shutdown()`` when the program started its own Ray instance (the
    blocks' task events are read from it), or before reading a store another process
    shares. Each block's own outcome is in its ``result``; this only waits. Raises
    TimeoutError when some block is still being attributed after ``timeout`` s.

    >>> import rayjoule
    >>> rayjoule.wait_all()  # nothing pending: returns at once
    """
    remaining = PENDING.wait_all(timeout)
    if remaining:
        raise TimeoutError(f"{remaining} measured block(s) still being attributed after "
                           f"{timeout:g} s")
