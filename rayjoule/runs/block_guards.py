"""Process-wide guards of measure() blocks: one open at a time, and none lost to
``ray.shutdown()`` while its attribution still runs in the background."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

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


class _Attributing:
    """The measure() blocks whose attribution still runs in the background.

    Their task events live in the GCS, which ``ray.shutdown()`` stops when the program
    started its own local instance, and ending a block with ``ray.shutdown()`` is common in
    Ray programs. So while any block is being attributed, ``ray.shutdown`` first waits for
    it (each wait is bounded by the block's ``settle_s`` plus one read). The guard wraps
    ``ray.shutdown`` once per process and is a pass-through when nothing is pending; Ray's
    own exit handler needs none (the interpreter joins these threads before it runs).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()

    def add(self, thread: threading.Thread) -> None:
        import ray

        with self._lock:
            self._threads.add(thread)
        if not getattr(ray.shutdown, "_waits_for_rayjoule", False):
            ray.shutdown = self._guarded(ray.shutdown)

    def done(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.discard(thread)

    def wait_all(self) -> None:
        with self._lock:
            pending = [t for t in self._threads if t is not threading.current_thread()]
        for thread in pending:
            thread.join()

    def _guarded(self, shutdown: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(shutdown)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            self.wait_all()
            return shutdown(*args, **kwargs)

        guarded._waits_for_rayjoule = True  # type: ignore[attr-defined]
        return guarded


ATTRIBUTING = _Attributing()
