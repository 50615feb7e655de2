"""A real multi-node Ray cluster on one machine: one Linux network namespace per node.

Each node is a namespace on a private bridge with its own address (``10.213.<n>.<i>``,
only between the namespaces built here: the bridge has no address of its own, so no
traffic reaches the machine's network), its own Ray temp dir, resources and environment,
and, for metering, its own host identity (``RAYJOULE_HOST_KEY``, the documented test hook
of :mod:`rayjoule.cluster.hosts`) and its own fake powercap tree (``RAYJOULE_POWERCAP_ROOT``)
driven at known watts. So the cluster looks like separate physical hosts, and a test can cut
a node's link (a partition), kill its raylet or add a node mid-run. Never give such nodes
the ``tdp`` model: namespaces share ``/proc/stat``, so each host would meter the machine.

Faults resolve in seconds: Ray's health checks and reconnect timeouts are lowered
(:data:`FAST_FAULTS`). Everything is torn down, even when a test fails: the processes in
each namespace (``ip netns pids``, by PID — never ``ray stop``, which kills every Ray on the
machine), the namespaces, links and bridge, the temp dirs. Names carry a per-run tag (the
pid by default), so a crashed run never collides with the next one. Usable from
``experiments/`` too::

    with NetnsCluster.build(Path("/tmp/x"), workers=2) as cluster:
        proc = cluster.run(cluster.driver, ["python", "-m", "rayjoule.run", ...,
                                            "--address", cluster.address])
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from rayjoule.cluster.keepalive import terminate_then_kill
from tests.meters.fake_powercap import FakePowercap, make_powercap_tree
from tests_support.private_ray import RAY, isolated_env

log = logging.getLogger(__name__)

#: Ray's own settings (``RAY_<name>``) that make faults resolve in seconds: the GCS
#: declares a silent node dead after ~period × threshold, and a raylet or driver that
#: cannot reach the GCS gives up after the reconnect timeout
FAST_FAULTS = {
    "RAY_health_check_initial_delay_ms": "2000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "2000",
    "RAY_health_check_failure_threshold": "5",
    "RAY_gcs_rpc_server_reconnect_timeout_s": "20",
    # a call in flight to a node whose link went down (the GCS preparing a placement group's
    # bundle there) otherwise waits ~130 s for TCP to give up; keepalive pings end it in ~3 s
    "RAY_grpc_client_keepalive_time_ms": "1000",
    "RAY_grpc_client_keepalive_timeout_ms": "2000",
    "RAY_task_events_report_interval_ms": "200",
}
#: the watts each simulated host's fake RAPL package draws (synthetic energy, not this VM's)
HOST_WATTS = {"package-0": 20.0, "dram-0": 4.0}
DASHBOARD_PORT = 8265
GCS_PORT = 6379
#: the most a node may take to join (``ray start`` plus its registration)
JOIN_TIMEOUT_S = 120.0


def unavailable() -> str | None:
    """Why network-namespace clusters cannot be built here (None when they can)."""
    if os.geteuid() != 0:
        return "network-namespace clusters need root"
    if shutil.which("ip") is None:
        return "network-namespace clusters need iproute2's `ip`"
    probe = f"rjprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()[:120]}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@dataclass
class Node:
    """One namespace; a Ray node once started in it (``started``)."""

    label: str
    netns: str
    ip: str
    veth: str  # the bridge side of its link: down = cut off
    temp_dir: Path
    env: dict[str, str]
    host_key: str
    powercap: FakePowercap | None = None
    started: bool = False


@dataclass
class NetnsCluster:
    """A bridge and the namespaces on it; see the module docstring."""

    base: Path
    tag: str
    subnet: int
    token: str
    nodes: dict[str, Node] = field(default_factory=dict)
    #: every namespace ever made here (a replaced node keeps its old one's address unused)
    made: list[Node] = field(default_factory=list)
    driving: subprocess.Popen | None = None
    one_host: str | None = None
    with_powercap: bool = True
    dashboard: bool = False

    # -- building ----------------------------------------------------------------------

    @classmethod
    @contextmanager
    def build(cls, base: Path | None = None, workers: int = 2, num_cpus: int = 1,
              driver_node: bool = True, tag: str | None = None, subnet: int | None = None,
              one_host: str | None = None, powercap: bool = True,
              dashboard: bool = False) -> Iterator[NetnsCluster]:
        """A head and ``workers`` worker nodes (and a namespace ``driver`` for drivers: a
        zero-CPU node, as on a real cluster's login node), torn down on exit.

        ``one_host`` gives every node that one host identity (a comparison with a one-node
        instance on this machine); ``powercap=False`` gives the nodes no fake RAPL tree;
        ``dashboard`` starts the head's dashboard (Ray's default host, 127.0.0.1, port 8265).
        """
        tag = tag or str(os.getpid())
        own_base = base is None
        base = Path(tempfile.mkdtemp(prefix=f"rjn{tag}", dir="/tmp")) if base is None else base
        cluster = cls(base=base, tag=tag, subnet=subnet or os.getpid() % 250 + 1,
                      token=secrets.token_hex(32), one_host=one_host, with_powercap=powercap,
                      dashboard=dashboard)
        try:
            cluster._bridge()
            cluster.start_node("head", num_cpus=num_cpus, head=True)
            for i in range(workers):
                cluster.start_node(f"w{i + 1}", num_cpus=num_cpus)
            if driver_node:
                cluster.start_node("driver", num_cpus=0)
            yield cluster
        finally:
            cluster.teardown()
            if own_base:
                shutil.rmtree(base, ignore_errors=True)

    @property
    def bridge(self) -> str:
        return f"rjb{self.tag}"

    @property
    def head(self) -> Node:
        return self.nodes["head"]

    @property
    def driver(self) -> Node:
        return self.nodes.get("driver") or self.head

    @property
    def address(self) -> str:
        return f"{self.head.ip}:{GCS_PORT}"

    def _bridge(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("link", "set", self.bridge, "up")
        self.driving = _start_powercap_driver(self.base)

    def namespace(self, label: str) -> Node:
        """A namespace on the bridge with the next address, its own temp dir and identity."""
        index = len(self.made) + 1
        netns, veth = f"rj{self.tag}{label}", f"rj{self.tag}v{index}"
        ip = f"10.213.{self.subnet}.{index}"
        _ip("netns", "add", netns)
        node = Node(label=label, netns=netns, ip=ip, veth=veth,
                    temp_dir=self.base / f"{label}{index}", env={},
                    host_key=self.one_host or f"netns-{label}:{self.tag}")
        self.nodes[label] = node
        self.made.append(node)  # from now on, teardown removes it
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        _ip("link", "set", veth, "master", self.bridge, "up")
        _ip("-n", netns, "addr", "add", f"{ip}/24", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        node.temp_dir.mkdir(parents=True, exist_ok=True)
        if self.with_powercap:
            node.powercap = make_powercap_tree(self.base / "powercap" / f"{label}{index}",
                                               sockets=1, with_core=False, with_dram=True)
            _register_tree(self.base, node.powercap)
        node.env = self.node_env(node)
        return node

    def node_env(self, node: Node, **extra: str) -> dict[str, str]:
        """The environment of a process of ``node``: its temp dir, identity, meter, token."""
        env = isolated_env(node.temp_dir, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token,
                           RAYJOULE_HOST_KEY=node.host_key, **FAST_FAULTS)
        if node.powercap is not None:
            env["RAYJOULE_POWERCAP_ROOT"] = str(node.powercap.root)
        env.update(extra)
        return env

    def start_node(self, label: str, num_cpus: int = 1, head: bool = False,
                   token: str | None = None) -> Node:
        """``ray start`` in a new namespace; ``token`` overrides the cluster's (a stranger)."""
        node = self.namespace(label)
        env = dict(node.env)
        if token is not None:
            env["RAY_AUTH_TOKEN"] = token
        dash = (["--include-dashboard=true", "--dashboard-port", str(DASHBOARD_PORT)]
                if self.dashboard else ["--include-dashboard=false"])
        where = (["--head", "--port", str(GCS_PORT), *dash] if head
                 else ["--address", self.address])
        cmd = [RAY, "start", *where, "--node-ip-address", node.ip, "--num-cpus", str(num_cpus),
               "--temp-dir", str(node.temp_dir), "--object-store-memory", str(100 * 2**20),
               "--disable-usage-stats"]
        proc = self.run(node, cmd, env=env, timeout=JOIN_TIMEOUT_S)
        if proc.returncode != 0:
            raise RuntimeError(f"ray start in {node.netns} failed ({proc.returncode}):\n"
                               f"{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}")
        node.started = True
        return node

    # -- running and faults --------------------------------------------------------------

    def run(self, node: Node, argv: Sequence[str], env: dict[str, str] | None = None,
            timeout: float = 300.0) -> subprocess.CompletedProcess:
        """Run ``argv`` in ``node``'s namespace with its environment (or ``env``)."""
        return subprocess.run(["ip", "netns", "exec", node.netns, *argv],
                              env=node.env if env is None else env, capture_output=True,
                              text=True, timeout=timeout, cwd=str(self.base))

    def popen(self, node: Node, argv: Sequence[str],
              env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start ``argv`` in ``node``'s namespace (torn down with the namespace)."""
        return subprocess.Popen(["ip", "netns", "exec", node.netns, *argv],
                                env=node.env if env is None else env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=str(self.base))

    def python(self, node: Node, code: str, *args: str, timeout: float = 300.0,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return self.run(node, [sys.executable, "-c", code, *args], env=env, timeout=timeout)

    def cut(self, node: Node) -> None:
        """Partition ``node`` from every other node: its link goes down (packets dropped)."""
        _ip("link", "set", node.veth, "down")

    def restore(self, node: Node) -> None:
        _ip("link", "set", node.veth, "up")

    def pids(self, node: Node) -> list[int]:
        """The processes living in ``node``'s namespace."""
        out = subprocess.run(["ip", "netns", "pids", node.netns], capture_output=True,
                             text=True)
        return [int(p) for p in out.stdout.split()] if out.returncode == 0 else []

    def kill_raylet(self, node: Node) -> int:
        """SIGKILL ``node``'s raylet (as if the node crashed); returns its pid."""
        for pid in self.pids(node):
            try:
                if psutil.Process(pid).name() == "raylet":
                    psutil.Process(pid).kill()
                    return pid
            except psutil.Error:
                continue
        raise LookupError(f"no raylet in {node.netns}")

    def stop_node(self, node: Node) -> None:
        """Kill every process of ``node`` (by PID) and remove its namespace."""
        for _ in range(5):  # a dying raylet may still fork: look again until none is left
            procs = []
            for pid in self.pids(node):
                try:
                    procs.append(psutil.Process(pid))
                except psutil.Error:
                    continue
            if not procs:
                break
            terminate_then_kill(procs, 5.0)
        # the link first: the kernel frees a namespace's devices only when it is released
        subprocess.run(["ip", "link", "del", node.veth], capture_output=True)
        subprocess.run(["ip", "netns", "del", node.netns], capture_output=True)
        node.started = False

    def alive_nodes(self, via: Node | None = None) -> int:
        """How many nodes the GCS counts alive (asked from ``via``, the head by default)."""
        code = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False, "
                "logging_level='ERROR'); print('alive', sum(n['Alive'] for n in ray.nodes()))")
        proc = self.python(via or self.head, code, self.address, timeout=120)
        # Ray may print its own lines too (e.g. "raylet has lagging heartbeats")
        counts = [line.split()[1] for line in proc.stdout.splitlines()
                  if line.startswith("alive ")]
        return int(counts[-1]) if proc.returncode == 0 and counts else -1

    def wait_alive(self, count: int, timeout_s: float = 60.0) -> int:
        """Poll until ``count`` nodes are alive (or the timeout); return the last count."""
        deadline = time.monotonic() + timeout_s
        seen = self.alive_nodes()
        while seen != count and time.monotonic() < deadline:
            time.sleep(1.0)
            seen = self.alive_nodes()
        return seen

    def wait_ready(self, node: Node, timeout_s: float = 120.0) -> None:
        """Until ``node`` has run a task: alive in the GCS is not yet able to run one (its
        first worker process still starting), and a run's host probe waits only 10 s."""
        code = ("import ray, sys\n"
                "from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy\n"
                "ray.init(address=sys.argv[1], log_to_driver=False, logging_level='ERROR')\n"
                "[nid] = [n['NodeID'] for n in ray.nodes()\n"
                "         if n['Alive'] and n['NodeManagerAddress'] == sys.argv[2]]\n"
                "f = ray.remote(num_cpus=0)(lambda: 1).options(\n"
                "    scheduling_strategy=NodeAffinitySchedulingStrategy(nid, soft=False))\n"
                "print(ray.get(f.remote(), timeout=float(sys.argv[3])))\n")
        proc = self.python(self.head, code, self.address, node.ip, str(timeout_s),
                           timeout=timeout_s + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"node {node.label} never ran a task:\n{proc.stderr[-2000:]}")

    # -- teardown ------------------------------------------------------------------------

    def teardown(self) -> None:
        for node in reversed(self.made):
            self.stop_node(node)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        if self.driving is not None:
            self.driving.kill()
            self.driving.wait()

    def leftovers(self) -> list[str]:
        """Namespaces, links and processes of this cluster still present (after teardown)."""
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        left = [line.split()[0] for line in names.splitlines()
                if line.startswith(f"rj{self.tag}")]
        left += [f"link {name}" for name in (self.bridge, *(n.veth for n in self.made))
                 if f" {name}:" in links or f" {name}@" in links]
        marker = str(self.base)
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if marker in " ".join(proc.info["cmdline"] or []):
                    left.append(f"pid {proc.pid}")
            except psutil.Error:
                continue
        return left


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


_DRIVER = """
import json, sys, time
from pathlib import Path
from tests.meters.fake_powercap import FakePowercapDriver
base, watts = Path(sys.argv[1]), json.loads(sys.argv[2])
drivers = {}
while True:  # trees are registered as nodes are added
    for line in (base / "trees").read_text().splitlines():
        if line not in drivers:
            drivers[line] = FakePowercapDriver(line, watts=watts, tick_s=0.05).start()
    time.sleep(0.5)
"""


def _start_powercap_driver(base: Path) -> subprocess.Popen:
    """One process advancing every node's fake counters at :data:`HOST_WATTS`."""
    import json

    (base / "trees").write_text("")
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    return subprocess.Popen([sys.executable, "-c", _DRIVER, str(base), json.dumps(HOST_WATTS),
                             str(base)], cwd=str(repo), env=env)


def _register_tree(base: Path, tree: FakePowercap) -> None:
    with (base / "trees").open("a") as f:
        f.write(f"{tree.base}\n")
