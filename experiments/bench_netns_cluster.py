"""A 3-node Ray cluster in network namespaces vs a one-node instance with the same CPUs.

Both run on this machine, as root (``tests/tests_support/netns_cluster.py`` builds them):

* ``3-node``: a head and two workers, one CPU each, each in its own namespace on a bridge;
* ``1-node``: one node with three CPUs in a namespace of its own.

The driver runs in the head's namespace in both. Every node has the same host identity
(``RAYJOULE_HOST_KEY``), so one meter serves the whole machine in both layouts and the
joules are comparable: the ``tdp`` model in process scope (Ray's processes and the
driver's CPU time × the model's watts per busy CPU, *modelled*, not a measurement: this VM
has no RAPL). The namespaces' own CPU seconds (every process in them, from ``/proc``) are
read too, as a meter-free check. The network between namespaces is local, so the
difference is Ray's and rayjoule's per-node overhead (three raylets, three object stores,
cross-node task traffic), not the network's.

The runs alternate between the two clusters (both stay up), ``--repeats`` times each, after
one warm-up run on each. Writes ``--out`` (JSON) and prints a table::

    sudo .venv/bin/python experiments/bench_netns_cluster.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from contextlib import ExitStack
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from tests_support.netns_cluster import NetnsCluster, unavailable  # noqa: E402

HOST = "bench-host:netns"


def cpu_seconds(cluster: NetnsCluster) -> float:
    """CPU seconds used so far by the processes in the cluster's namespaces (and waited-for
    children)."""
    total = 0.0
    for node in cluster.nodes.values():
        for pid in cluster.pids(node):
            try:
                t = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            total += t.user + t.system + t.children_user + t.children_system
    return total


def one_run(cluster: NetnsCluster, args: argparse.Namespace, out: Path) -> dict:
    before = cpu_seconds(cluster)
    proc = cluster.run(cluster.head, [
        sys.executable, "-m", "rayjoule.run", "--workload", args.workload, "--size", args.size,
        "--tasks", str(args.tasks), "--concurrency", "3", "--framework", "ray",
        "--meter", "tdp", "--tdp-scope", "process", "--idle-seconds", "0",
        "--address", cluster.address, "--db", str(cluster.base / "bench.sqlite"),
        "--json", str(out)], timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    used = cpu_seconds(cluster) - before
    r = json.loads(out.read_text())
    return {"wall_s": r["wall_s"], "tasks_per_s": args.tasks / r["wall_s"],
            "energy_j": r["energy"]["total_j"], "overhead_j": r["energy"]["overhead_j"],
            "meter": f"{r['meter']['name']} ({r['meter']['kind']})",
            "namespace_cpu_s": used, "hosts": len(r["hosts"]),
            "task_hosts": sorted({t["node_id"][:8] for t in r["tasks"]})}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="pi")
    ap.add_argument("--size", default="6e7")
    ap.add_argument("--tasks", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "experiments" / "netns_cluster.json"))
    args = ap.parse_args()
    reason = unavailable()
    if reason:
        print(f"bench_netns_cluster: {reason}", file=sys.stderr)
        return 2
    pid = os.getpid()
    rows: dict[str, list[dict]] = {"3-node": [], "1-node": []}
    with ExitStack() as stack:
        clusters = {
            "3-node": stack.enter_context(NetnsCluster.build(
                workers=2, num_cpus=1, driver_node=False, tag=f"{pid}a",
                subnet=pid % 120 + 1, one_host=HOST, powercap=False)),
            "1-node": stack.enter_context(NetnsCluster.build(
                workers=0, num_cpus=3, driver_node=False, tag=f"{pid}b",
                subnet=pid % 120 + 121, one_host=HOST, powercap=False)),
        }
        for cluster in clusters.values():  # warm-up: workers started, actors made
            one_run(cluster, args, cluster.base / "warm.json")
        for k in range(args.repeats):
            for name, cluster in clusters.items():
                row = one_run(cluster, args, cluster.base / f"r{k}.json")
                rows[name].append(row)
                print(name, json.dumps(row), flush=True)
    summary = {}
    for name, rs in rows.items():
        summary[name] = {key: statistics.median(r[key] for r in rs)
                         for key in ("wall_s", "tasks_per_s", "energy_j", "namespace_cpu_s")}
    ratio = {key: summary["3-node"][key] / summary["1-node"][key]
             for key in summary["1-node"]}
    result = {"config": vars(args), "meter": rows["1-node"][0]["meter"], "runs": rows,
              "median": summary, "ratio_3node_over_1node": ratio}
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"{'':8} {'wall s':>8} {'tasks/s':>8} {'J (tdp)':>9} {'ns CPU s':>9}")
    for name, s in [*summary.items(), ("ratio", ratio)]:
        print(f"{name:8} {s['wall_s']:8.3f} {s['tasks_per_s']:8.2f} {s['energy_j']:9.2f} "
              f"{s['namespace_cpu_s']:9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
