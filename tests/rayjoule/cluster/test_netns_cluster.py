"""A real multi-node Ray cluster (one network namespace per node): runs, faults, tokens.

Needs root and ``ip netns`` (CI is root); skipped with the reason elsewhere. One cluster
(a head, two workers with one CPU each, and a zero-CPU node for the driver, each posing as
a physical host with its own fake RAPL tree) is shared by the tests in file order; the
faults that break it come last or rebuild what they broke. Expected outcomes (the failure
contract, docs/cluster.md):

* a worker cut off while a run starts: left out of the hosts (a warning), the run goes on
  and is stored ``ok``;
* a worker's raylet killed mid-run: Ray retries its tasks, the run is stored ``ok``; its
  host keeps the energy metered until then, marked ``complete=false``;
* a worker's link cut mid-run and restored: the same as a killed raylet once the GCS
  declares it dead (the restored raylet is refused and exits);
* a node joining mid-run: metered from when it is seen, idle policy "joined mid-run";
* the driver unable to reach the head: one stderr line, exit 2, nothing stored;
* the head cut off while a tune runs: Ray ends the driver (exit 1) after its GCS reconnect
  timeout; finished trials are kept, the one in flight is stored ``failed`` (lost head)
  before Ray ends the driver.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import pytest

from rayjoule.core.errors import ConfigError
from tests_support.netns_cluster import NetnsCluster, unavailable

REASON = unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

PYTHON = sys.executable


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with NetnsCluster.build(workers=2, num_cpus=1) as built:
        yield built
    assert built.leftovers() == []


def rayjoule(cluster: NetnsCluster, cmd: str, *args: str, env=None, timeout=300):
    return cluster.run(cluster.driver, [PYTHON, "-m", f"rayjoule.{cmd}", *args], env=env,
                       timeout=timeout)


def stored(db: Path) -> list:
    """The runs in ``db`` (finished ones as results, a run left ``running`` as its row)."""
    from rayjoule.runs.store import Store

    with Store(db) as store:
        return [store.get(r["run_id"]) if r["status"] != "running" else r
                for r in store.runs()]


def statuses(db: Path) -> list[str]:
    from rayjoule.runs.store import Store

    with Store(db) as store:
        return [r["status"] for r in store.runs()]


def assert_conserved(result) -> None:
    """Per host: its tasks' energy + its overhead = its total; the hosts sum to the run."""
    for host in result.hosts:
        on_host = [t.energy_j for t in result.tasks if t.host == host.host]
        assert math.fsum(on_host) + host.overhead_j == pytest.approx(host.energy.total_j,
                                                                    rel=1e-6, abs=1e-9)
    assert math.fsum(h.energy.total_j for h in result.hosts) == pytest.approx(
        result.energy.total_j, rel=1e-9)


def run_args(db: Path, cluster: NetnsCluster, *extra: str) -> list[str]:
    return ["--framework", "ray", "--meter", "rapl", "--idle-seconds", "0",
            "--address", cluster.address, "--db", str(db), *extra]


def test_a_run_lands_on_every_node_and_meters_each_host(cluster, tmp_path):
    db = tmp_path / "r.sqlite"
    proc = rayjoule(cluster, "run", "--workload", "sleep", "--size", "18", "--tasks", "9",
                    "--concurrency", "3", *run_args(db, cluster))
    assert proc.returncode == 0, proc.stderr[-3000:]
    [result] = stored(db)
    assert result.status == "ok" and result.complete
    hosts = {h.host for h in result.hosts}
    workers = {cluster.nodes[n].host_key for n in ("head", "w1", "w2")}
    assert workers | {cluster.driver.host_key} == hosts  # one meter per (simulated) host
    assert {t.host for t in result.tasks} == workers  # tasks landed on every CPU node
    assert all(h.meter.name == "rapl" and h.info.get("machine") for h in result.hosts)
    assert result.meter.kind == "measured"  # fake counters: synthetic, read as RAPL
    assert_conserved(result)


def test_measure_from_a_driver_in_its_own_namespace(cluster, tmp_path):
    code = (
        "import sys, ray, rayjoule\n"
        "@ray.remote(num_cpus=1)\n"
        "def work(i):\n"
        "    return sum(k * k for k in range(300_000))\n"
        "with rayjoule.measure('netns-block', address=sys.argv[1], db=sys.argv[2],\n"
        "                      meter='rapl', idle_seconds=0) as m:\n"
        "    ray.get([work.remote(i) for i in range(6)])\n"
        "print(m.result.run_id)\n")
    db = tmp_path / "m.sqlite"
    proc = cluster.python(cluster.driver, code, cluster.address, str(db))
    assert proc.returncode == 0, proc.stderr[-3000:]
    [result] = stored(db)
    assert result.status == "ok"
    assert len(result.hosts) == 4 and len(result.tasks) == 6
    assert_conserved(result)


def test_tune_and_compare_run_across_the_cluster(cluster, tmp_path):
    db = tmp_path / "t.sqlite"
    proc = rayjoule(cluster, "tune", "--workload", "pi", "--size", "2e6", "--trials", "2",
                    "--tasks", "3:6", "--num-cpus", "1:1", "--mode", "tasks",
                    *run_args(db, cluster)[2:])  # tune takes --frameworks, not --framework
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = stored(db)
    assert len(runs) == 2 and all(r.status == "ok" and len(r.hosts) == 4 for r in runs)
    db2 = tmp_path / "c.sqlite"
    proc = rayjoule(cluster, "compare", "--workload", "pi", "--size", "2e6", "--frameworks",
                    "ray", "--tasks", "3", "--repeats", "1", *run_args(db2, cluster)[2:])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert all(r.status == "ok" for r in stored(db2))


def test_a_driver_without_the_token_gets_one_line(cluster, tmp_path):
    env = cluster.node_env(cluster.driver, RAY_AUTH_TOKEN="0" * 64)
    proc = rayjoule(cluster, "run", "--workload", "pi", "--size", "1e5",
                    *run_args(tmp_path / "r.sqlite", cluster), env=env, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    [line] = lines
    assert "token" in line and "Traceback" not in proc.stderr
    assert not (tmp_path / "r.sqlite").exists() or stored(tmp_path / "r.sqlite") == []


def test_a_node_without_the_token_cannot_join(cluster):
    before = cluster.alive_nodes()
    with pytest.raises(RuntimeError, match="ray start"):
        cluster.start_node("stranger", num_cpus=1, token="0" * 64)
    assert cluster.alive_nodes() == before
    cluster.stop_node(cluster.nodes["stranger"])


DASH_PROBE = """
import socket, sys, time
host, port, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + wait
while True:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print("open")
        break
    except OSError:
        if time.monotonic() > deadline:
            print("closed")
            break
        time.sleep(1)
"""


def test_the_dashboard_is_reachable_on_the_head_only(tmp_path):
    """docs/cluster.md: Ray's dashboard binds 127.0.0.1 unless ``--dashboard-host`` says
    otherwise, so on a cluster it is reachable on the head and from no other node."""
    with NetnsCluster.build(workers=0, dashboard=True, tag=f"d{os.getpid() % 10000}",
                            subnet=(os.getpid() + 97) % 250 + 1, powercap=False) as small:
        on_head = small.python(small.head, DASH_PROBE, "127.0.0.1", "8265", "90")
        from_driver = small.python(small.driver, DASH_PROBE, small.head.ip, "8265", "3")
        assert on_head.stdout.split() == ["open"], on_head.stderr[-2000:]
        assert from_driver.stdout.split() == ["closed"], from_driver.stderr[-2000:]
    assert small.leftovers() == []


def test_a_worker_cut_off_as_a_run_starts_is_left_out_and_the_run_goes_on(cluster, tmp_path):
    """The issue's bug: the host probe pinned to a partitioned node raised (exit 1)."""
    db = tmp_path / "r.sqlite"
    cluster.cut(cluster.nodes["w2"])
    try:
        proc = rayjoule(cluster, "run", "--workload", "pi", "--size", "2e6", "--tasks", "4",
                        *run_args(db, cluster))
    finally:
        cluster.restore(cluster.nodes["w2"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    [result] = stored(db)
    assert result.status == "ok"
    assert cluster.nodes["w2"].host_key not in {t.host for t in result.tasks}
    assert_conserved(result)
    _replace_worker(cluster, "w2")


def test_a_worker_raylet_killed_mid_run_keeps_the_run_ok(cluster, tmp_path):
    db = tmp_path / "r.sqlite"
    run = cluster.popen(cluster.driver, [PYTHON, "-m", "rayjoule.run", "--workload", "sleep",
                                         "--size", "36", "--tasks", "9",
                                         *run_args(db, cluster)])
    _wait_for_window(db, run)
    cluster.kill_raylet(cluster.nodes["w1"])
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err[-3000:]
    [result] = stored(db)
    assert result.status == "ok" and len(result.tasks) == 9  # Ray retried w1's tasks
    lost = {h.host: h.complete for h in result.hosts}
    assert lost.get(cluster.nodes["w1"].host_key) is False  # kept, marked incomplete
    assert all(done for host, done in lost.items() if host != cluster.nodes["w1"].host_key)
    assert_conserved(result)
    _replace_worker(cluster, "w1")


def test_a_worker_link_cut_mid_run_and_restored(cluster, tmp_path):
    db = tmp_path / "r.sqlite"
    w1 = cluster.nodes["w1"]
    run = cluster.popen(cluster.driver, [PYTHON, "-m", "rayjoule.run", "--workload", "sleep",
                                         "--size", "36", "--tasks", "9",
                                         *run_args(db, cluster)])
    _wait_for_window(db, run)
    cluster.cut(w1)
    try:
        assert cluster.wait_alive(3, timeout_s=90) == 3  # the GCS declared w1 dead
        cluster.restore(w1)
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-3000:]
    finally:  # a failure here must not leave the module's cluster with a cut node
        if run.poll() is None:
            run.kill()
            run.wait()
        _replace_worker(cluster, "w1")
    [result] = stored(db)
    assert result.status == "ok" and len(result.tasks) == 9
    assert {h.host: h.complete for h in result.hosts}.get(w1.host_key) is False
    assert_conserved(result)


def test_a_node_joining_mid_run_is_metered_from_then_on(cluster, tmp_path):
    db = tmp_path / "r.sqlite"
    run = cluster.popen(cluster.driver, [PYTHON, "-m", "rayjoule.run", "--workload", "sleep",
                                         "--size", "120", "--tasks", "30",
                                         *run_args(db, cluster)])
    _wait_for_window(db, run)
    w3 = cluster.start_node("w3", num_cpus=1)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err[-3000:]
    [result] = stored(db)
    assert result.status == "ok"
    joined = {h.host: h for h in result.hosts}.get(w3.host_key)
    assert joined is not None and joined.energy.total_j > 0
    assert "joined mid-run" in joined.idle_policy and joined.info.get("machine")
    assert_conserved(result)
    cluster.stop_node(w3)


def test_a_driver_that_cannot_reach_the_head_gets_one_line(cluster, tmp_path):
    cluster.cut(cluster.driver)
    try:
        db = tmp_path / "r.sqlite"
        proc = rayjoule(cluster, "run", "--workload", "pi", "--size", "1e5",
                        *run_args(db, cluster), timeout=60)  # 3 s reachability check
    finally:
        cluster.restore(cluster.driver)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    [line] = lines
    assert cluster.address in line and "Traceback" not in proc.stderr
    assert not db.exists() or stored(db) == []


def test_the_head_cut_off_while_a_tune_runs_ends_the_tune_and_keeps_its_trials(cluster,
                                                                              tmp_path):
    """Ray ends a driver that cannot reach the GCS for RAY_gcs_rpc_server_reconnect_timeout_s
    (exit 1, from inside Ray: no ``finally`` runs): the trials finished before are kept, the
    one in flight was stored ``failed`` with the lost head by the run's head watch while the
    driver still lived, no driver process is left."""
    db = tmp_path / "t.sqlite"
    tune = cluster.popen(cluster.driver, [PYTHON, "-m", "rayjoule.tune", "--workload", "sleep",
                                          "--size", "30", "--trials", "4", "--tasks", "6:6",
                                          "--num-cpus", "1:1", "--mode", "tasks",
                                          *run_args(db, cluster)[2:]])
    _wait_for_window(db, tune, after_ok=True)
    cluster.cut(cluster.head)
    out, err = tune.communicate(timeout=300)
    assert tune.returncode == 1, err[-3000:]
    assert "Failed to connect to GCS" in err
    done = statuses(db)
    assert done[0] == "ok" and done[-1] == "failed"
    from rayjoule.runs.store import Store

    with Store(db) as store:
        last = store.runs()[-1]
    assert last["error"].startswith(f"lost the Ray head {cluster.address}")
    assert not [pid for pid in cluster.pids(cluster.driver)
                if "rayjoule.tune" in " ".join(_cmdline(pid))]


# -- helpers -------------------------------------------------------------------------------

def _wait_for_window(db: Path, proc, timeout_s: float = 180.0, after_ok: bool = False) -> None:
    """Until a run is stored ``running`` (its meters' windows open, its tasks submitted; with
    ``after_ok``, one after a run stored ``ok``), then a few seconds more, so its tasks run
    and the node watcher has looked at every meter."""
    from rayjoule.runs.store import Store

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with Store.open_read_only(db) as store:
                seen = [r["status"] for r in store.runs()]
            started = "running" in seen and (not after_ok or "ok" in seen)
        except ConfigError:  # not created yet, or its tables not yet
            started = False
        if started:
            time.sleep(5.0)
            return
        time.sleep(0.5)
    raise AssertionError(f"the run never started: {proc.poll()}")


def _replace_worker(cluster: NetnsCluster, label: str) -> None:
    """A fault left ``label`` dead: remove its namespace and start a fresh node there."""
    cluster.stop_node(cluster.nodes.pop(label))
    cluster.start_node(label, num_cpus=1)
    assert cluster.wait_alive(4) == 4
    cluster.wait_ready(cluster.nodes[label])


def _cmdline(pid: int) -> list[str]:
    import psutil

    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []
