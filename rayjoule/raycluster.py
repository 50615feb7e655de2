"""Connecting to Ray and finding the physical hosts behind its nodes.

Local by default (a fresh instance sized to this machine); ``address`` (or
``RAY_ADDRESS``) joins an existing cluster. An unreachable address is a
user error, reported in one line before Ray spends a minute retrying.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from rayjoule.errors import ConfigError

log = logging.getLogger(__name__)

#: the fixed namespace of rayjoule's long-lived (meter) actors
NAMESPACE = "rayjoule"


def connect(address: str | None = None, **init_kwargs: Any) -> bool:
    """Make sure this process is connected to Ray; return True when it started Ray itself."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and address not in ("auto", "local") and not address.startswith("ray://"):
        _check_reachable(address)
    kwargs: dict[str, Any] = {
        "address": address,
        "logging_level": logging.WARNING,
        "log_to_driver": False,
        "configure_logging": True,
    }
    if not address:
        kwargs.setdefault("include_dashboard", True)
    kwargs.update(init_kwargs)
    try:
        ray.init(**kwargs)
    except ConnectionError as exc:
        raise ConfigError(f"cannot connect to the Ray cluster at {address}: {exc}") from None
    return not address or address == "local"


def disconnect() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def _check_reachable(address: str, timeout_s: float = 3.0) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"Ray address must be host:port, 'auto' or ray://host:port; got {address!r}"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {address}: {exc}") from None


def _node_host(node_id: str) -> tuple[str, str]:
    from rayjoule.hostid import host_key

    return node_id, host_key()


def hosts_of_cluster() -> dict[str, list[str]]:
    """Physical host key → ids of the alive Ray nodes on it.

    Each node is asked for its host key by a zero-CPU task pinned to it, so
    several nodes on one machine map to one host.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(_node_host)
    refs = [
        probe.options(
            num_cpus=0,
            name="rayjoule.host_probe",
            scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
        ).remote(node["NodeID"])
        for node in ray.nodes()
        if node.get("Alive")
    ]
    hosts: dict[str, list[str]] = {}
    for node_id, host in ray.get(refs):
        hosts.setdefault(host, []).append(node_id)
    return hosts


def ray_process_pids() -> list[int]:
    """Pids of this host's Ray processes (raylet, GCS, dashboard, workers).

    Used by the process-scope power model so the framework's own daemons are
    charged: their energy is what framework overhead means.
    """
    import psutil

    markers = ("raylet", "gcs_server", "ray::", "default_worker.py", "dashboard",
               "log_monitor.py", "monitor.py", "runtime_env", "ray/_private")
    pids = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            text = " ".join([proc.info["name"] or "", *(proc.info["cmdline"] or [])])
        except (psutil.Error, TypeError):
            continue
        if any(m in text for m in markers):
            pids.append(proc.pid)
    return pids
