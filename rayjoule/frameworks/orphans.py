"""No orphans: processes a run starts must not outlive its driver, however the driver dies.

Two mechanisms, because a SIGKILLed driver runs no clean-up code at all:

* :func:`die_with_parent` — a worker we start ourselves (the native pool's) asks the
  kernel for ``PR_SET_PDEATHSIG``: when its parent dies, it gets SIGKILL.
* :class:`Reaper` — for processes started by a library we do not control (Lithops'
  localhost workers), a small watchdog process holds a pipe from the driver. When the pipe
  closes without a goodbye (the kernel closes it when the driver dies), the watchdog kills
  every descendant of the driver it has seen, matching pid *and* start time so a reused
  pid is never hit.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
POLL_S = 0.5


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent exits (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)


class Reaper:
    """A watchdog process that kills this process's descendants if this process dies.

    >>> with Reaper():   # doctest: +SKIP
    ...     start_workers()
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self._proc is not None:
            return
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "rayjoule.frameworks.orphans", str(os.getpid())],
            stdin=subprocess.PIPE, start_new_session=True,
        )

    def stop(self) -> None:
        """Say goodbye: the driver is ending normally and cleans up itself."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            assert proc.stdin is not None
            proc.stdin.write(b"bye\n")
            proc.stdin.close()
        except OSError:
            pass  # the watchdog already exited; nothing to tell it
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> Reaper:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _watch(parent_pid: int) -> None:
    """The watchdog's loop: remember the parent's descendants until the pipe closes."""
    import psutil

    seen: dict[int, float] = {}
    said_bye = threading.Event()
    closed = threading.Event()

    def read_stdin() -> None:
        if sys.stdin.buffer.readline().strip() == b"bye":
            said_bye.set()
        closed.set()

    threading.Thread(target=read_stdin, daemon=True).start()
    try:
        parent = psutil.Process(parent_pid)
    except psutil.NoSuchProcess:
        return
    me = os.getpid()
    while not closed.wait(POLL_S):
        try:
            for child in parent.children(recursive=True):
                if child.pid != me:
                    seen[child.pid] = child.create_time()
        except psutil.NoSuchProcess:
            break
    if said_bye.is_set():
        return
    time.sleep(0.1)
    for pid, created in seen.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == created:
                proc.kill()
        except psutil.Error:
            pass  # already gone: exactly what we wanted


if __name__ == "__main__":
    _watch(int(sys.argv[1]))
