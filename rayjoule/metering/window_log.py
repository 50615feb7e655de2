"""The meter actors' energy log: one line per metered window, in Ray's session logs folder.

Why a file of its own and not the actor's stdout: Ray streams an actor's stdout/stderr
to the driver that created it (``log_to_driver``, on by default in a user's
``ray.init``), and a detached meter actor is created by whichever driver met the host
first, so a print would land in some user's terminal for as long as that driver lives.
A file in the node's session logs folder reaches nobody's terminal, yet the Ray
dashboard's *Logs* page lists every file of that folder per node, so a dashboard user
finds ``rayjoule-meter-<host>.log`` there, next to the worker logs.

A line reads::

    window run=3f2a9c1e0b7d workload=pi framework=ray host=vm:… joules=31.09 seconds=2.41 \
watts=12.90 meter=rapl kind=measured

This module only formats and writes; what a window measured is decided elsewhere.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile

from rayjoule.metering.host_meter import WindowEnergy

#: where a worker's logs go when Ray's node object is not reachable (its default temp dir)
DEFAULT_LOGS_DIR = "/tmp/ray/session_latest/logs"


def log_file_name(host: str) -> str:
    """``rayjoule-meter-<host>.log``, the host key made safe for a file name."""
    return "rayjoule-meter-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", host) + ".log"


def ray_logs_dir() -> str:
    """This Ray worker's session logs folder (what the dashboard's Logs page lists)."""
    try:
        import ray._private.worker as ray_worker  # the node object knows its folder

        node = ray_worker._global_node
        if node is not None:
            return str(node.get_logs_dir_path())
    except Exception:  # noqa: BLE001 - Ray's internals moved: fall back to the default
        pass
    return DEFAULT_LOGS_DIR if os.path.isdir(DEFAULT_LOGS_DIR) else tempfile.gettempdir()


def window_line(window: WindowEnergy, run_id: str | None, workload: str | None,
                framework: str) -> str:
    """The log line of one closed window (run id, workload, host, joules, seconds, watts…)."""
    seconds = window.seconds
    watts = window.total_j / seconds if seconds > 0 else 0.0
    return (f"window run={run_id or '-'} workload={workload or '-'} framework={framework} "
            f"host={window.host} joules={window.total_j:.2f} seconds={seconds:.2f} "
            f"watts={watts:.2f} meter={window.meter.name} kind={window.meter.kind}"
            + ("" if window.complete else " complete=false"))


class WindowLog:
    """Appends window lines to ``<logs dir>/rayjoule-meter-<host>.log``; never to a stream.

    The logger does not propagate, so no handler a worker or driver installed on the root
    logger (Ray's stdout/stderr redirection among them) ever sees these lines.
    """

    def __init__(self, host: str, logs_dir: str | None = None) -> None:
        self.path = os.path.join(logs_dir or ray_logs_dir(), log_file_name(host))
        self._log = logging.getLogger(f"rayjoule.meter_log.{log_file_name(host)}")
        self._log.propagate = False
        self._log.setLevel(logging.INFO)
        if not any(getattr(h, "baseFilename", None) == os.path.abspath(self.path)
                   for h in self._log.handlers):
            handler = logging.FileHandler(self.path, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            self._log.addHandler(handler)

    def window(self, window: WindowEnergy, run_id: str | None, workload: str | None,
               framework: str) -> None:
        self._log.info("%s", window_line(window, run_id, workload, framework))
