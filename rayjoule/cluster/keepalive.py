"""``--keep-alive``: a local Ray head that outlives the command, and how to reach it.

Why a head of its own: a Ray instance started by ``ray.init()`` belongs to the
driver process and dies with it, taking the dashboard and the meter actors'
metrics along. ``ray start --head`` runs Ray as separate daemons instead, so
after ``python -m rayjoule.run … --keep-alive`` the dashboard, the detached
``rayjoule-meter:<host>`` actors and their Prometheus metrics stay up until the
user runs ``ray stop``. A later command on this machine (with or without
``--keep-alive``) finds that head through Ray's own ``ray_current_cluster``
file and reuses it, so the energy counters keep accumulating.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rayjoule.core.errors import RayjouleError

log = logging.getLogger(__name__)

START_TIMEOUT_S = 120.0
#: Ray's conventional GCS port (what ``ray start --address=<ip>:6379`` on other nodes expects)
DEFAULT_GCS_PORT = 6379


def ray_cli() -> list[str]:
    """The ``ray`` command of *this* Python (the venv's), so head and driver run one Ray version."""
    beside = Path(sys.executable).with_name("ray")
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    on_path = shutil.which("ray")
    if on_path:
        log.warning("no ray command next to %s; using %s", sys.executable, on_path)
        return [on_path]
    return [sys.executable, "-m", "ray.scripts.scripts"]


def free_port(preferred: int = 0) -> int:
    """``preferred`` if it is free at this moment, else a port the OS picks."""
    with socket.socket() as s:
        try:
            s.bind(("", preferred))
        except OSError:
            s.bind(("", 0))
        return int(s.getsockname()[1])


def running_local_head() -> str | None:
    """The GCS address of the local head ``ray start`` last started, if it still answers."""
    try:
        from ray._private.utils import read_ray_address  # private: Ray has no public lookup
    except ImportError:
        log.warning("this Ray has no read_ray_address(); cannot look for a running local head")
        return None
    address = read_ray_address()
    if not address:
        return None
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2.0):
            return address
    except (OSError, ValueError) as exc:
        log.info("stale Ray address %s (%s); starting a new head", address, exc)
        return None


def start_command(num_cpus: int | None = None, metrics_port: int | None = None) -> list[str]:
    """The ``ray start --head`` command line for a keep-alive head.

    The GCS gets Ray's usual port 6379 unless another instance holds it; the
    dashboard binds to 127.0.0.1 only (it can run code on the cluster); the
    metrics export port is fixed so it can be printed and scraped.
    """
    return [
        *ray_cli(), "start", "--head",
        "--port", str(free_port(DEFAULT_GCS_PORT)),
        "--dashboard-host", "127.0.0.1",
        "--dashboard-port", str(free_port(8265)),
        "--metrics-export-port", str(metrics_port or free_port()),
        "--num-cpus", str(num_cpus or os.cpu_count() or 1),
        "--disable-usage-stats",
    ]


def start_local_head(num_cpus: int | None = None) -> str:
    """Start a local head as its own daemons; return its GCS address.

    Raises RayjouleError with Ray's own message when ``ray start`` fails.
    """
    cmd = start_command(num_cpus)
    log.info("starting a local Ray head: %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=START_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RayjouleError(f"could not start a local Ray head ({' '.join(cmd)}): {exc}") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RayjouleError(f"`ray start --head` exited {proc.returncode}: " + " | ".join(tail))
    address = running_local_head()
    if address is None:
        raise RayjouleError("`ray start --head` succeeded but wrote no reachable address "
                            "(ray_current_cluster); try `ray status`")
    return address


def ensure_local_head(num_cpus: int | None = None) -> str:
    """The running local head's address, starting one when there is none."""
    address = running_local_head()
    if address:
        log.info("reusing the local Ray head at %s", address)
        return address
    return start_local_head(num_cpus)


@dataclass(frozen=True)
class Announcement:
    """Where the kept-alive Ray instance can be seen, and how to stop it."""

    dashboard_url: str | None
    metrics_urls: list[str] = field(default_factory=list)
    stop_command: str = "ray stop"
    gcs_address: str | None = None
    token_auth: bool = False

    def lines(self) -> list[str]:
        out = ["Ray is kept alive (later commands on this machine find and reuse it)."]
        if self.gcs_address:
            out.append(f"  address:   {self.gcs_address}   (other machines join with "
                       f"`ray start --address={self.gcs_address}`)")
        out.append(f"  dashboard: {self.dashboard_url}" if self.dashboard_url
                   else "  dashboard: not running (install ray[default] for it)")
        for url in self.metrics_urls:
            out.append(f"  metrics:   {url}   (curl it | grep ray_rayjoule)")
        out.append(f"  stop it:   {self.stop_command}")
        if self.token_auth:
            out.append("  token authentication is on: the dashboard asks for the token in "
                       "~/.ray/auth_token (or RAY_AUTH_TOKEN); set RAY_AUTH_MODE=token for "
                       "`ray list actors` and for --address")
        return out


def describe() -> Announcement:
    """Read the connected cluster's dashboard URL and every node's metrics export URL."""
    import ray

    if not ray.is_initialized():
        raise RayjouleError("not connected to Ray: nothing to keep alive")
    dashboard: str | None
    try:
        dashboard = ray._private.worker.get_dashboard_url() or None
    except Exception:  # private API; a missing URL must not fail a finished run
        log.exception("could not read the dashboard URL")
        dashboard = None
    if dashboard and "://" not in dashboard:
        dashboard = f"http://{dashboard}"
    metrics = [
        f"http://{n['NodeManagerAddress']}:{n['MetricsExportPort']}/metrics"
        for n in ray.nodes() if n.get("Alive") and n.get("MetricsExportPort")
    ]
    gcs = ray.get_runtime_context().gcs_address
    # ray.init sets RAY_AUTH_MODE=token in this process when it picked up the local token
    token = os.environ.get("RAY_AUTH_MODE", "").lower() == "token"
    return Announcement(dashboard, metrics, stop_command(ray), gcs, token)


def stop_command(ray: Any) -> str:
    """How to stop *this* head only (``ray stop`` would stop every Ray instance on the
    machine, other users' included): :func:`stop_head` on its session directory."""
    try:
        session = ray._private.worker.global_worker.node.get_session_dir_path()
    except Exception:  # private API; fall back to Ray's blunt but public command
        log.info("could not read the Ray session directory", exc_info=True)
        return f"{' '.join(ray_cli())} stop   (stops every Ray instance on this machine)"
    return f"{shlex.quote(sys.executable)} -m rayjoule.cluster.keepalive --stop {session}"


def stop_head(session_dir: str, timeout_s: float = 10.0) -> int:
    """Stop the Ray head whose session directory is ``session_dir``; return how many
    processes were stopped.

    Its daemons carry the session's path on their command line or hold its log files open
    (agents rename themselves, so their command line alone is not enough); its workers are
    their descendants. SIGTERM first, SIGKILL for what is left after ``timeout_s``.
    """
    import psutil

    session = str(Path(session_dir).resolve())
    name = Path(session).name
    roots = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if name in " ".join(proc.info["cmdline"] or ()) or any(
                    f.path.startswith(session) for f in proc.open_files()):
                roots.append(proc)
        except psutil.Error:
            continue  # gone, or not ours to look at
    procs = {p.pid: p for p in roots}
    for proc in roots:
        try:
            procs.update({c.pid: c for c in proc.children(recursive=True)})
        except psutil.Error:
            pass
    procs.pop(os.getpid(), None)
    terminate_then_kill(list(procs.values()), timeout_s)
    return len(procs)


def terminate_then_kill(procs: list[Any], timeout_s: float) -> None:
    """SIGTERM every process, then SIGKILL those still alive after ``timeout_s``."""
    import psutil

    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass  # already gone
    _, alive = psutil.wait_procs(procs, timeout=timeout_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass


def announce(print_fn: Callable[[str], None] = print) -> Announcement:
    """Print the dashboard URL, the metrics export URLs and the stop command (CLIs call this)."""
    info = describe()
    for line in info.lines():
        print_fn(line)
    return info


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m rayjoule.cluster.keepalive",
                                     description="stop one kept-alive Ray head")
    parser.add_argument("--stop", metavar="SESSION_DIR", required=True,
                        help="the head's session directory (printed by --keep-alive)")
    stopped = stop_head(parser.parse_args().stop)
    print(f"stopped {stopped} process(es) of the Ray head")
