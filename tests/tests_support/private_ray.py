"""Private Ray heads for tests that need their own cluster, isolated from the shared session.

Why not ``ray stop``: it kills *every* Ray process on the machine, including
the test session's shared instance and other people's. Each private head here
lives under its own short temp dir (Unix socket paths are limited to ~107
bytes), and is stopped by killing exactly the processes whose command line
names that dir, plus their descendants (the workers, whose titles Ray rewrites).

``RAY_TMPDIR`` points Ray's default temp dir into that dir too, so a head the
code under test starts itself (``--keep-alive``) and the ``ray_current_cluster``
file that ``ray start`` writes stay private as well: no other process's
``ray.init()`` can wander into them.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from rayjoule.cluster.keepalive import terminate_then_kill

log = logging.getLogger(__name__)

RAY = str(Path(sys.executable).with_name("ray"))
#: the checkout under test; subprocesses import rayjoule, meters and workloads from it first
REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port free right now (a tiny race with other binders is accepted in tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_env(temp_dir: Path, **extra: str) -> dict[str, str]:
    """The environment for a subprocess whose Ray must stay inside ``temp_dir``.

    ``PYTHONPATH`` starts with this checkout, so the subprocess and its Ray
    workers run the code under test whatever their working directory (and
    however the package happens to be installed).
    """
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.update(RAY_TMPDIR=str(temp_dir), RAY_USAGE_STATS_ENABLED="0",
               RAY_DISABLE_DOCKER_CPU_WARNING="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@contextmanager
def private_dir() -> Iterator[Path]:
    """A short temp dir; on exit every Ray process living under it is killed, then it is removed."""
    temp_dir = Path(tempfile.mkdtemp(prefix="rj", dir="/tmp"))
    try:
        yield temp_dir
    finally:
        killed = kill_ray_under(temp_dir)
        log.info("killed %d Ray processes under %s", len(killed), temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


@dataclass(frozen=True)
class Head:
    address: str  # GCS host:port
    metrics_port: int
    temp_dir: Path
    env: dict[str, str]  # for drivers that connect to it
    dashboard_port: int = 0

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"


@contextmanager
def private_head(num_cpus: int = 2, report_interval_ms: int = 1000,
                 auth_token: str | None = None) -> Iterator[Head]:
    """``ray start --head`` with every port chosen free and its own temp dir; killed on exit.

    Token authentication is disabled for head and drivers alike, so the test
    does not depend on whether ``~/.ray/auth_token`` happens to exist; with
    ``auth_token`` it is on, with that token (``RAY_AUTH_TOKEN``) for both.
    """
    with private_dir() as temp_dir:
        auth = ({"RAY_AUTH_MODE": "disabled"} if auth_token is None
                else {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": auth_token})
        env = isolated_env(temp_dir, **auth,
                           RAY_metrics_report_interval_ms=str(report_interval_ms))
        port, metrics, dashboard = free_port(), free_port(), free_port()
        cmd = [RAY, "start", "--head", "--port", str(port), "--metrics-export-port", str(metrics),
               "--temp-dir", str(temp_dir), "--num-cpus", str(num_cpus),
               "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
               "--disable-usage-stats"]
        for flag in ("--dashboard-agent-listen-port",
                     "--dashboard-agent-grpc-port", "--runtime-env-agent-port",
                     "--ray-client-server-port"):
            cmd += [flag, str(free_port())]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        yield Head(f"127.0.0.1:{port}", metrics, temp_dir, env, dashboard)


def kill_ray_under(temp_dir: Path, timeout_s: float = 5.0) -> list[int]:
    """Kill the processes whose command line names ``temp_dir``, and their descendants."""
    marker = str(temp_dir)
    me = os.getpid()
    procs: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.pid != me and marker in " ".join(proc.info["cmdline"] or []):
                procs[proc.pid] = proc
                procs.update({c.pid: c for c in proc.children(recursive=True)})
        except psutil.Error:
            continue
    terminate_then_kill(list(procs.values()), timeout_s)
    return sorted(procs)


def scrape(url: str, timeout_s: float = 5.0) -> str:
    """The Prometheus text of a metrics export port ('' while it does not answer yet)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return resp.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        log.info("scrape of %s failed: %s", url, exc)
        return ""


def wait_for_metric(url: str, predicate, timeout_s: float = 30.0, every_s: float = 1.0):
    """Poll ``url`` until ``predicate(text)`` is truthy; return that value (or the last falsy)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = predicate(scrape(url))
        if found or time.monotonic() > deadline:
            return found
        time.sleep(every_s)


_SERIES_RE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)$")
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def series(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of metric ``name`` in Prometheus text format: (labels, value) pairs."""
    out = []
    for line in text.splitlines():
        m = _SERIES_RE.match(line.strip())
        if m and m["name"] == name:
            out.append((dict(_LABEL_RE.findall(m["labels"] or "")), float(m["value"])))
    return out
