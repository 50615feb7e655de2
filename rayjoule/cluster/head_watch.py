"""Notice a lost Ray head before Ray ends the driver, so the run in flight is stored failed.

Why: a driver that cannot reach the GCS for ``RAY_gcs_rpc_server_reconnect_timeout_s``
(60 s by default) is ended from inside Ray (``Failed to connect to GCS``, exit 1), with no
Python ``finally`` run: the run in flight would stay ``running`` in the store for ever.
:class:`HeadWatch` connects to the GCS port every second from a daemon thread; when it has
not answered for half of Ray's timeout it calls ``on_lost`` once, while the process still
lives. If the head comes back in time the run goes on, and finishing it rewrites its row.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Ray's default for how long a driver may go without the GCS before Ray ends it
RAY_RECONNECT_DEFAULT_S = 60.0
CHECK_INTERVAL_S = 1.0


def ray_reconnect_timeout_s() -> float:
    """Ray's GCS reconnect timeout as this process's Ray reads it (its env override)."""
    raw = os.environ.get("RAY_gcs_rpc_server_reconnect_timeout_s", "")
    try:
        return float(raw) if raw else RAY_RECONNECT_DEFAULT_S
    except ValueError:
        return RAY_RECONNECT_DEFAULT_S


def head_answers(gcs_address: str, timeout_s: float = 1.0) -> bool:
    """Whether a TCP connection to the GCS's ``host:port`` opens within ``timeout_s``."""
    host, _, port = gcs_address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


class HeadWatch:
    """Calls ``on_lost(silent_s)`` once when the head has been silent for ``grace_s``."""

    def __init__(self, gcs_address: str, on_lost: Callable[[float], None],
                 grace_s: float | None = None, interval_s: float = CHECK_INTERVAL_S,
                 answers: Callable[[str], bool] = head_answers) -> None:
        self.gcs_address, self.on_lost = gcs_address, on_lost
        self.grace_s = grace_s if grace_s is not None else max(ray_reconnect_timeout_s() / 2,
                                                               2.0)
        self.interval_s, self._answers = interval_s, answers
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="rayjoule-head-watch",
                                        daemon=True)

    def start(self) -> HeadWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2 * self.interval_s + 1.0)

    def _watch(self) -> None:
        silent_since: float | None = None
        while not self._stop.wait(self.interval_s):
            if self._answers(self.gcs_address):
                silent_since = None
                continue
            now = time.monotonic()
            silent_since = now if silent_since is None else silent_since
            if now - silent_since >= self.grace_s:
                log.error("the Ray head %s has not answered for %.0f s", self.gcs_address,
                          now - silent_since)
                try:
                    self.on_lost(now - silent_since)
                except Exception as exc:  # logged: the thread must not die silently
                    log.error("recording the lost head failed: %s", exc)
                return
