"""Connecting to Ray and finding the physical hosts behind its nodes.

Local by default (a fresh instance sized to this machine, or with
``keep_alive`` a head of its own that outlives the driver); ``address`` (or
``RAY_ADDRESS``) joins an existing cluster. An unreachable address is a user
error, reported in one line before Ray spends a minute retrying.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from rayjoule.core.config import RunConfig
from rayjoule.core.errors import ConfigError

log = logging.getLogger(__name__)

#: the fixed namespace of rayjoule's long-lived (meter) actors
NAMESPACE = "rayjoule"
#: the resource only the head node holds (how ``ray.nodes()`` tells the head apart)
HEAD_RESOURCE = "node:__internal_head__"


def connect(address: str | None = None, *, keep_alive: bool = False,
            local_env: Mapping[str, str] | None = None,
            job_metadata: Mapping[str, str] | None = None, **init_kwargs: Any) -> bool:
    """Make sure this process is connected to Ray; return True when rayjoule provided the instance.

    ``address`` (or ``RAY_ADDRESS``) joins an existing cluster: False is
    returned, and nobody should shut that cluster down. Without one, a local
    instance is used and True is returned:

    * ``keep_alive=False``: ``ray.init()`` starts one owned by this process (it
      dies with it; :func:`disconnect` stops it);
    * ``keep_alive=True``: a head started by ``ray start --head`` as its own
      process, so it and its dashboard outlive the driver; an already running
      local head (a previous ``--keep-alive``) is reused
      (:func:`rayjoule.cluster.keepalive.ensure_local_head`).

    ``local_env`` (``RAY_<config>`` variables, e.g. a shorter task-event report interval)
    applies only to the instance ``ray.init()`` starts here: Ray's processes read them from
    the environment they inherit, so they are set in this process's environment until
    :func:`disconnect`; a variable the user set wins, and a joined cluster never sees them.

    ``job_metadata`` (e.g. :func:`run_metadata`) becomes the driver job's metadata, which
    the Ray dashboard's Jobs page shows; a driver already connected keeps its own.
    """
    import ray

    if ray.is_initialized():
        return False
    if job_metadata:
        init_kwargs.setdefault("job_config", ray.job_config.JobConfig(
            metadata={str(k): str(v) for k, v in job_metadata.items()}))
    address = address or os.environ.get("RAY_ADDRESS") or None
    if keep_alive and not address:
        from rayjoule.cluster.keepalive import ensure_local_head

        ensure_local_head(num_cpus=init_kwargs.pop("num_cpus", None))
        # "auto" (not the head's explicit address) is what makes Ray pick up the
        # local auth token, exactly as for any cluster found on this machine.
        _init(ray, "auto", {**_quiet(), **init_kwargs})
        return True
    if address and address not in ("auto", "local") and not address.startswith("ray://"):
        _check_reachable(address)
        _check_token(address)
    if not address:
        # a head kept alive earlier is reused only if it answers; a stale address file (a
        # head that crashed) must never make ray.init wait minutes for it
        from rayjoule.cluster.keepalive import running_local_head

        address = "auto" if running_local_head() else "local"
    kwargs: dict[str, Any] = {"address": address, **_quiet()}
    if address == "local":
        kwargs.update(LOCAL_ONLY)
        kwargs.setdefault("include_dashboard", True)
    kwargs.update(init_kwargs)
    if address == "local" and local_env:
        _OWN_ENV.update({k: v for k, v in local_env.items() if k not in os.environ})
        os.environ.update(_OWN_ENV)
    try:
        _init(ray, address, kwargs)
    except BaseException:
        _drop_own_env()
        raise
    return address == "local"


#: the ``local_env`` variables connect() set for the instance it started (disconnect drops them)
_OWN_ENV: dict[str, str] = {}


def _drop_own_env() -> None:
    for key, value in _OWN_ENV.items():
        if os.environ.get(key) == value:
            del os.environ[key]
    _OWN_ENV.clear()


#: a local instance of our own serves its dashboard (which can run code on the cluster) on
#: the loopback interface only. Ray 2.60 offers no setting for its other servers (GCS,
#: raylet, object manager, agents bind every interface; ``_node_ip_address`` is not
#: honoured for a local instance); token authentication, on by default, guards them.
LOCAL_ONLY: dict[str, Any] = {"dashboard_host": "127.0.0.1"}


def run_metadata(config: RunConfig) -> dict[str, str]:
    """What names a run in Ray's job metadata: the tool, workload, framework and settings.

    Ray wants string values, so each setting is its JSON text.
    """
    import json

    settings = config.to_dict()
    meta = {"rayjoule": "run", "workload": str(config.workload),
            "framework": str(config.framework)}
    meta.update({f"rayjoule.{k}": json.dumps(v, sort_keys=True, default=str)
                 for k, v in settings.items() if k not in ("workload", "framework")})
    return meta


def _quiet() -> dict[str, Any]:
    """Ray's own log lines (e.g. its token-authentication notice) only with --log-level."""
    level = logging.getLogger("rayjoule").getEffectiveLevel()
    return {"logging_level": logging.ERROR if level >= logging.WARNING else level,
            "log_to_driver": False, "configure_logging": True}


def _init(ray: Any, address: str | None, kwargs: dict[str, Any]) -> None:
    """``ray.init`` keeping this process's own SIGTERM handler.

    Why: ``ray.init`` replaces the driver's SIGTERM handler with a bare ``sys.exit(15)``
    (documented in its docstring), which would end a command without storing the run in
    flight as interrupted and with status 15 instead of 143. A Python handler the process
    installed (a command's, or a script's own) is put back; a process without one keeps
    Ray's. A SIGTERM that arrives while ``ray.init`` runs (Ray's handler already in place)
    is handed to that handler too.
    """
    kwargs = {**kwargs, "address": address}
    own = (signal.getsignal(signal.SIGTERM)
           if threading.current_thread() is threading.main_thread() else None)
    try:
        ray.init(**kwargs)
    except SystemExit as exc:
        if callable(own) and exc.code == signal.SIGTERM:
            own(signal.SIGTERM, None)
        raise
    except ConnectionError as exc:
        raise ConfigError(f"cannot connect to the Ray cluster at {address}: "
                          f"{_connection_hint(exc)}") from None
    finally:
        if callable(own):  # not SIG_DFL / SIG_IGN: somebody's Python handler
            signal.signal(signal.SIGTERM, own)


def _connection_hint(exc: BaseException) -> str:
    """The useful part of Ray's connection error (the cause hides the real reason)."""
    cause = exc.__cause__
    if cause is not None and type(cause).__name__ == "AuthenticationError":
        return TOKEN_HINT
    return str(exc) if cause is None else f"{exc} ({type(cause).__name__}: {cause})"


def disconnect() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
    _drop_own_env()


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


#: what a driver whose token the cluster refuses is told (Ray itself retries for a minute)
TOKEN_HINT = ("the cluster uses token authentication; set RAY_AUTH_MODE=token and make its "
              "token available (~/.ray/auth_token or RAY_AUTH_TOKEN)")


def _check_token(address: str, timeout_s: float = 3.0) -> None:
    """Refuse, in one line and seconds, a cluster that refuses this driver's token.

    ``ray.init`` would retry for ``RAY_gcs_rpc_server_reconnect_timeout_s`` (a minute by
    default), logging a line a second. One GCS call through Ray's own channel factory
    (TLS and token as ``ray.init`` would send them) tells at once; any other outcome is
    left to ``ray.init``.
    """
    try:
        import grpc
        from ray._private.grpc_utils import init_grpc_channel
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc
    except ImportError as exc:  # Ray moved its internals: ray.init reports it, slowly
        log.debug("token pre-check unavailable: %s", exc)
        return
    channel = init_grpc_channel(address)
    try:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=timeout_s)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
            raise ConfigError(f"cannot connect to the Ray cluster at {address}: "
                              f"{TOKEN_HINT}") from None
        log.debug("token pre-check of %s: %s", address, exc.code())
    finally:
        channel.close()


def _node_host(node_id: str) -> tuple[str, str]:
    from rayjoule.cluster.hosts import host_key

    return node_id, host_key()


def alive_nodes() -> list[dict[str, Any]]:
    """``ray.nodes()`` entries of the nodes alive now."""
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def is_head(node: dict[str, Any]) -> bool:
    """Whether a ``ray.nodes()`` entry is the head (it holds the internal head resource)."""
    return HEAD_RESOURCE in (node.get("Resources") or {})


@functools.cache
def remote_once(fn_or_class: Any) -> Any:
    """``ray.remote(fn_or_class)``, made once per process.

    Each ``ray.remote`` object is pickled and exported on its first call in a job, so
    making one per call repeats that work; Ray re-exports a cached one when a new job starts.
    """
    import ray

    return ray.remote(fn_or_class)


#: node id → its host key, as its probe answered: a node never moves host, and a node id is
#: never reused, so each node is probed once per process (a probe task waits for a worker
#: lease, up to a second right after a program released its workers)
_HOST_OF_NODE: dict[str, str] = {}
#: how long :func:`hosts_of_cluster` waits for a node's answer by default: a node that is
#: partitioned away (the GCS has not declared it dead yet) must not hold a run back
PROBE_TIMEOUT_S = 10.0
#: when no node at all answers within the timeout, wait this many times longer once more
SLOW_CLUSTER_FACTOR = 6


def hosts_of_cluster(node_ids: Iterable[str] | None = None,
                     timeout_s: float | None = PROBE_TIMEOUT_S) -> dict[str, list[str]]:
    """Physical host key → ids of the alive Ray nodes on it (or of ``node_ids`` only).

    Each node is asked for its host key by a zero-CPU task pinned to it (once per node
    and process), so several nodes on one machine map to one host. The head node comes
    first in its host's list, so callers that pin to ``[0]`` land on it when they can.

    A node that cannot answer is left out with a warning, never raised: one that died or
    was cut off after ``ray.nodes()`` listed it (its pinned probe is unschedulable), or one
    that does not answer within ``timeout_s`` (partitioned but not yet declared dead, or
    just joined and not running tasks yet). When no node of the whole cluster (no
    ``node_ids``) has answered by then, the cluster is slow rather than cut off, and it gets
    ``SLOW_CLUSTER_FACTOR`` times as long again. Callers that watch the cluster
    (:class:`~rayjoule.metering.meter_actors.NodeWatcher`) ask again for the nodes left
    out. ``timeout_s=None`` waits as long as the nodes take.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = alive_nodes()
    if node_ids is not None:
        wanted = set(node_ids)
        nodes = [n for n in nodes if n["NodeID"] in wanted]
    nodes.sort(key=lambda n: (not is_head(n), n["NodeID"]))
    probe = remote_once(_node_host)
    refs = {
        probe.options(
            num_cpus=0,
            name="rayjoule.host_probe",
            scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
        ).remote(node["NodeID"]): node["NodeID"]
        for node in nodes if node["NodeID"] not in _HOST_OF_NODE
    }
    ready, pending = (ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
                      if refs else ([], []))
    known = len(nodes) - len(refs)  # nodes that answered an earlier probe of this process
    if pending and not ready and not known and timeout_s is not None and node_ids is None:
        # no node answered at all: a slow cluster (first workers starting on a busy
        # machine), not a partition of every node; give it longer before leaving all out
        ready, pending = ray.wait(pending, num_returns=len(pending),
                                  timeout=SLOW_CLUSTER_FACTOR * timeout_s)
    lost: dict[str, str] = {refs[r]: f"no answer within {timeout_s:g} s" for r in pending}
    for ref in ready:
        try:
            node_id, host = ray.get(ref)
        except ray.exceptions.RayError as exc:  # e.g. TaskUnschedulableError: node gone
            lost[refs[ref]] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            continue
        _HOST_OF_NODE[node_id] = host
    hosts: dict[str, list[str]] = {}
    for node in nodes:  # in the nodes' order: the head first
        if node["NodeID"] in _HOST_OF_NODE and node["NodeID"] not in lost:
            hosts.setdefault(_HOST_OF_NODE[node["NodeID"]], []).append(node["NodeID"])
    for ref in pending:  # best effort: the probe must not linger in the scheduler
        try:
            ray.cancel(ref)
        except Exception as exc:  # noqa: BLE001 - a lost node's task may be beyond reach
            log.debug("cancelling the host probe of a silent node: %s", exc)
    for node_id, why in sorted(lost.items()):
        log.warning("Ray node %s did not say which host it is on (%s); leaving it out",
                    node_id[:12], why)
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
