"""Multi-node scenarios on a simulated cluster (``ray.cluster_utils.Cluster``), run as a script.

Why a separate process: a driver can be connected to one Ray cluster only,
and the test session shares one local instance (``ray_session``). The test
runs ``python cluster_scenario.py <scenario> <db>`` with ``RAY_TMPDIR`` set to a
private dir (see :mod:`private_ray`), so the simulated nodes stay invisible to
every other process, and reads the JSON printed on the last line.

All nodes of a simulated cluster run on this one machine, so they share one
physical host: rayjoule must start exactly one meter for them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import meters
import workloads
from rayjoule import RunConfig, run
from rayjoule.cluster.connect import connect

PI_SIZE = 100_000_000  # ~1-2 CPU-seconds of numpy work in all: above the meters' noise


def _result(r) -> dict[str, Any]:
    return {
        "status": r.status, "wall_s": r.wall_s, "total_j": r.energy.total_j,
        "static_j": r.energy.static_j, "dynamic_j": r.energy.dynamic_j,
        "hosts": [h.host for h in r.hosts], "idle_w": [h.idle_w for h in r.hosts],
        "task_nodes": [t.node_id for t in r.tasks], "summary": r.summary,
    }


def _meter_actors(ray) -> list[str]:
    return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                  if a["name"].startswith("rayjoule-meter:"))


def _pi(db: str, concurrency: int, tasks: int = 6, **kw) -> RunConfig:
    return RunConfig(workload="pi", size=PI_SIZE, framework="ray", tasks=tasks,
                     concurrency=concurrency, meter="tdp", idle_seconds=0, **kw)


def three_nodes(cluster, ray, db: str) -> dict[str, Any]:
    """The same work on the head alone, then on head + two nodes (same machine)."""
    from rayjoule.metering.ray_cluster import RayMetering

    one = run(_pi(db, concurrency=1, tdp_scope="process"), db=db)
    metering = RayMetering("tdp", "host")  # knows the head only
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    joined = metering.watch_once()  # probes the two new nodes: same host, no new meter
    three = run(_pi(db, concurrency=3, tdp_scope="process"), db=db)
    return {"one": _result(one), "three": _result(three), "joined_hosts": joined,
            "nodes": [n["NodeID"] for n in ray.nodes() if n["Alive"]],
            "meter_actors": _meter_actors(ray),
            "model_idle_w": meters.TdpMeter().idle_watts,
            "model_max_w": meters.TdpMeter().max_watts}


def _marks_dir() -> Path:
    return Path(os.environ["RAY_TMPDIR"]) / "task-starts"


def _marking_sleep(chunk: Any) -> float:
    """The sleep workload's map, leaving a mark of the node each attempt *started* on.

    Task records only tell where the last attempt ran; the marks show that an
    attempt was running on the node that was then removed. (Defined in
    ``__main__``, so Ray pickles it by value.)
    """
    import ray

    node = ray.get_runtime_context().get_node_id()
    (_marks_dir() / f"{node}.{uuid.uuid4().hex}").touch()
    return workloads.get("sleep").map(chunk)


def node_removed(cluster, ray, db: str) -> dict[str, Any]:
    """A worker node is killed while its task sleeps: the task is retried elsewhere."""
    _marks_dir().mkdir(parents=True, exist_ok=True)
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    victim = workers[0]
    removed: dict[str, Any] = {}

    def remove_soon(_n: int) -> None:
        def go() -> None:
            # remove the node as soon as a task has started there (each sleeps 1.5 s)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if any(p.name.startswith(victim.node_id) for p in _marks_dir().iterdir()):
                    removed["node_id"] = victim.node_id
                    cluster.remove_node(victim, allow_graceful=False)
                    return
                time.sleep(0.05)

        threading.Thread(target=go, daemon=True).start()

    cfg = RunConfig(workload="sleep", size=9.0, framework="ray", tasks=6, concurrency=3,
                    meter="tdp", idle_seconds=0)
    marking = dataclasses.replace(workloads.get("sleep"), map=_marking_sleep)
    r = run(cfg, db=db, on_start=remove_soon, workload=marking)
    starts = [p.name.split(".")[0] for p in _marks_dir().iterdir()]
    return {"run": _result(r), "removed": removed.get("node_id"), "starts": starts,
            "meter_actors": _meter_actors(ray),
            "alive": [n["NodeID"] for n in ray.nodes() if n["Alive"]]}


def _spin(ms: float) -> str:
    """About ``ms`` of CPU work; returns the node it ran on."""
    import ray

    t = time.perf_counter()
    while time.perf_counter() - t < ms / 1000:
        pass
    return ray.get_runtime_context().get_node_id()


def measure_block(cluster, ray, db: str) -> dict[str, Any]:
    """Plain Ray code metered with ``measure(address=...)`` across three nodes of one host:
    the driver joins the cluster through measure() itself."""
    import math

    import rayjoule

    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.shutdown()  # a driver not connected yet: measure(address=...) joins
    with rayjoule.measure("spread", address=cluster.address, meter="tdp", idle_seconds=0,
                          db=db) as m:
        spin = ray.remote(_spin).options(scheduling_strategy="SPREAD")
        ran_on = ray.get([spin.remote(30) for _ in range(12)])
    r = m.result
    tasks = math.fsum(t.energy_j for t in r.tasks)
    overhead = math.fsum(h.overhead_j for h in r.hosts)
    return {"run": _result(r), "ran_on": ran_on, "tasks_seen": r.summary["tasks_seen"],
            "conserved": abs(tasks + overhead - r.energy.total_j) <= 1e-9 * r.energy.total_j,
            "meter_actors": _meter_actors(ray),
            "nodes": [n["NodeID"] for n in ray.nodes() if n["Alive"]]}


SCENARIOS = {"three_nodes": three_nodes, "node_removed": node_removed,
             "measure_block": measure_block}


def main(argv: list[str]) -> int:
    import ray
    from ray.cluster_utils import Cluster

    scenario, db = SCENARIOS[argv[0]], argv[1]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        connect(cluster.address)  # the --address path of the commands
        out = scenario(cluster, ray, db)
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
