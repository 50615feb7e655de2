"""Clusters: one meter per physical host, hosts joining, nodes leaving, keep-alive heads.

The multi-node scenarios build a ``ray.cluster_utils.Cluster`` in a subprocess
(``tests_support/cluster_scenario.py``) with a private ``RAY_TMPDIR``: a driver
can only be connected to one cluster, and the shared test session must stay
undisturbed. All simulated nodes run on this machine, i.e. on one physical host.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rayjoule.cluster import keepalive
from rayjoule.metering.meter_actors import (
    API_VERSION,
    NAMESPACE,
    NodeWatcher,
    anchor_node,
    meter_actor,
)
from tests_support import old_meter
from tests_support.private_ray import isolated_env, private_dir

SCENARIO = Path(__file__).parents[2] / "tests_support" / "cluster_scenario.py"


def scenario(name: str, tmp_path: Path) -> dict:
    with private_dir() as temp_dir:
        env = isolated_env(temp_dir, RAY_AUTH_MODE="disabled")
        proc = subprocess.run([sys.executable, str(SCENARIO), name, str(tmp_path / "r.sqlite")],
                              env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- without a cluster ---------------------------------------------------------------------

class FakeCluster:
    def __init__(self, nodes: dict[str, str]):
        self.nodes = dict(nodes)  # node id → host
        self.fail_probe = False
        self.joined: list[tuple[str, list[str]]] = []

    def hosts_of(self, ids):
        if self.fail_probe:
            raise TimeoutError("node not ready")
        out: dict[str, list[str]] = {}
        for i in ids:
            out.setdefault(self.nodes[i], []).append(i)
        return out

    def watcher(self) -> NodeWatcher:
        return NodeWatcher(known_nodes=list(self.nodes), known_hosts=set(self.nodes.values()),
                           on_new_host=lambda h, ids: self.joined.append((h, ids)),
                           list_nodes=lambda: list(self.nodes), hosts_of=self.hosts_of)


def test_a_node_joining_on_a_known_host_gets_no_second_meter():
    c = FakeCluster({"n1": "hostA"})
    w = c.watcher()
    c.nodes["n2"] = "hostA"
    assert w.poll() == [] and c.joined == []


def test_a_new_host_gets_a_meter_once_and_an_unready_one_is_retried():
    c = FakeCluster({"n1": "hostA"})
    w = c.watcher()
    c.nodes["n3"] = "hostB"
    c.fail_probe = True
    with pytest.raises(TimeoutError):
        w.poll()
    c.fail_probe = False
    assert w.poll() == ["hostB"]
    assert w.poll() == []
    assert c.joined == [("hostB", ["n3"])]


def test_meters_prefer_the_drivers_node_then_the_head():
    assert anchor_node(["w1", "head", "drv"], ["drv", "head"]) == "drv"
    assert anchor_node(["w1", "head"], ["drv", "head"]) == "head"
    assert anchor_node(["w1", "w2"], ["drv", "head"]) == "w1"


def test_keep_alive_starts_a_head_of_its_own_with_dashboard_and_metrics_port():
    cmd = keepalive.start_command(num_cpus=3, metrics_port=9999)
    assert Path(cmd[0]).name == "ray" or cmd[1:3] == ["-m", "ray.scripts.scripts"]
    args = cmd[cmd.index("start"):]
    assert args[:2] == ["start", "--head"] and "--disable-usage-stats" in args
    pairs = dict(zip(args[2::2], args[3::2], strict=False))
    assert pairs["--dashboard-host"] == "127.0.0.1"
    assert pairs["--metrics-export-port"] == "9999" and pairs["--num-cpus"] == "3"
    assert int(pairs["--port"]) > 0


def test_announcement_says_where_and_how_to_stop():
    text = "\n".join(keepalive.Announcement("http://127.0.0.1:8265", ["http://h:1/metrics"],
                                           "ray stop", "h:6379", token_auth=True).lines())
    assert "http://127.0.0.1:8265" in text and "http://h:1/metrics" in text
    assert "ray stop" in text and "h:6379" in text and "RAY_AUTH_MODE=token" in text


def test_a_meter_actor_from_an_older_rayjoule_is_replaced(ray_session):
    ray = ray_session
    old_meter.ship_by_value()
    host = "test-old-host:00000000"  # a fake host, so the real meter actor is not touched
    old = ray.remote(old_meter.OldMeterActor).options(
        name=f"rayjoule-meter:{host}", namespace=NAMESPACE, lifetime="detached", num_cpus=0,
    ).remote()
    ray.get(old.host.remote())
    new = meter_actor(host, ray.get_runtime_context().get_node_id())
    try:
        assert ray.get(new.api_version.remote()) == API_VERSION
        assert ray.get(new.host.remote()) != "old"
    finally:
        ray.kill(new)


# -- simulated clusters (subprocesses) -----------------------------------------------------

def test_three_nodes_on_one_host_are_metered_once(tmp_path):
    out = scenario("three_nodes", tmp_path)
    one, three = out["one"], out["three"]
    assert len(out["nodes"]) == 3
    assert len(set(three["task_nodes"])) >= 2  # the work spread over nodes
    assert len(out["meter_actors"]) == 1  # exactly one meter for the one physical host
    assert out["joined_hosts"] == []  # nodes that joined later were recognised as that host
    assert len(one["hosts"]) == len(three["hosts"]) == 1
    assert one["summary"] == three["summary"]
    # static power is one host's, not three hosts'
    assert three["static_j"] / three["wall_s"] == pytest.approx(out["model_idle_w"], rel=1e-9)
    # a host's energy cannot exceed its full power (a triple count of a busy host would)
    assert three["total_j"] / three["wall_s"] <= out["model_max_w"] * 1.3
    # the same work costs about the same, not three times as much
    assert 0.4 < three["total_j"] / one["total_j"] < 2.5


def test_a_node_removed_mid_run_retries_its_task_and_keeps_the_energy(tmp_path):
    out = scenario("node_removed", tmp_path)
    r, victim = out["run"], out["removed"]
    assert victim is not None and r["status"] == "ok"
    assert r["summary"] == {"seconds": 9.0}
    assert len(r["task_nodes"]) == 6 and victim not in r["task_nodes"]
    assert victim in out["starts"]  # an attempt was running there, then ran elsewhere
    assert len(out["meter_actors"]) == 1 and len(r["hosts"]) == 1  # the meter survived
    assert r["static_j"] > 0 and r["total_j"] >= r["static_j"]


def test_measure_joins_a_cluster_by_address_and_meters_each_host_once(tmp_path):
    out = scenario("measure_block", tmp_path)
    r = out["run"]
    assert r["status"] == "ok" and len(out["nodes"]) == 3
    assert len(set(out["ran_on"])) >= 2  # the block's tasks ran on several nodes
    assert out["tasks_seen"] == 12 and sorted(r["task_nodes"]) == sorted(out["ran_on"])
    assert len(out["meter_actors"]) == 1 and len(r["hosts"]) == 1  # one physical host
    assert out["conserved"]
