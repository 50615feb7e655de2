import math
import random

import pytest

from rayjoule.core.attribution import HostShare, attribute
from rayjoule.core.errors import UnmeteredHosts
from rayjoule.core.result import TaskRecord


def task(i, host, cpu, start=0.0, end=1.0, slot_cpus=1.0):
    return TaskRecord(i, "node", host, 100 + i, start, end, cpu, slot_cpus=slot_cpus)


def test_dynamic_is_cpu_time_times_the_hosts_rate_and_the_rest_is_overhead():
    tasks = [task(0, "a", 1.0), task(1, "a", 3.0)]
    # the host was busy 5 CPU-s (1 s of it framework/driver): 40 J / 5 s = 8 J per busy CPU-s
    done, overhead = attribute(tasks, {"a": HostShare(static_j=0.0, dynamic_j=40.0,
                                                       busy_cpu_s=5.0)})
    assert [t.dynamic_j for t in done] == pytest.approx([8.0, 24.0])
    assert overhead == {"a": pytest.approx(8.0)}


def test_static_is_split_by_slot_time_and_cpus():
    tasks = [task(0, "a", 0.0, 0.0, 1.0), task(1, "a", 0.0, 0.0, 3.0, slot_cpus=2.0)]
    done, overhead = attribute(tasks, {"a": HostShare(14.0, 0.0, 0.0)})
    assert [t.static_j for t in done] == pytest.approx([2.0, 12.0])
    assert overhead["a"] == pytest.approx(0.0)


def test_energy_is_static_plus_dynamic():
    done, _ = attribute([task(0, "a", 1.0)], {"a": HostShare(3.0, 4.0, 2.0)})
    assert done[0].energy_j == pytest.approx(done[0].static_j + done[0].dynamic_j)
    assert (done[0].static_j, done[0].dynamic_j) == pytest.approx((3.0, 2.0))


def test_tasks_cpu_above_the_hosts_busy_time_never_exceeds_the_hosts_dynamic_energy():
    done, overhead = attribute([task(0, "a", 4.0)], {"a": HostShare(0.0, 10.0, busy_cpu_s=2.0)})
    assert done[0].dynamic_j == pytest.approx(10.0)
    assert overhead["a"] == pytest.approx(0.0)


def test_host_without_tasks_keeps_all_its_energy_as_overhead():
    done, overhead = attribute([task(0, "a", 1.0)], {"a": HostShare(1.0, 5.0, 1.0),
                                                      "driver": HostShare(2.0, 7.0, 3.0)})
    assert done[0].energy_j == pytest.approx(6.0)
    assert overhead["driver"] == pytest.approx(9.0)


def test_conservation_with_overhead_to_1e9_relative():
    rng = random.Random(7)
    hosts = {f"h{k}": HostShare(rng.uniform(0, 50), rng.uniform(0, 200), rng.uniform(0, 40))
             for k in range(4)}
    tasks = [task(i, f"h{rng.randrange(3)}", rng.uniform(0, 5), 0.0, rng.uniform(0.01, 9),
                  rng.choice([0.5, 1.0, 2.0])) for i in range(300)]
    done, overhead = attribute(tasks, hosts)
    total = math.fsum(h.static_j + h.dynamic_j for h in hosts.values())
    explained = math.fsum(t.energy_j for t in done) + math.fsum(overhead.values())
    assert explained == pytest.approx(total, rel=1e-9)
    assert overhead["h3"] == pytest.approx(hosts["h3"].static_j + hosts["h3"].dynamic_j)


def test_task_on_unmetered_host_names_the_host_and_the_count():
    with pytest.raises(UnmeteredHosts, match=r"ghost \(2 tasks\)") as info:
        attribute([task(0, "ghost", 1.0), task(1, "ghost", 1.0), task(2, "a", 1.0)],
                  {"a": HostShare(1.0, 1.0, 1.0)})
    assert info.value.hosts == {"ghost": 2}


def test_a_tasks_energy_copy_equals_dataclasses_replace_and_leaves_the_original():
    import dataclasses

    from rayjoule.core.result import TaskRecord

    t = TaskRecord(task_id=3, node_id="n", host="h", pid=7, start=1.0, end=2.5, cpu_s=0.9,
                   stage="map", slot_cpus=2.0, framework_stats={"attempt": 0})
    copy = t.with_energy(0.25, 1.5)
    assert copy == dataclasses.replace(t, static_j=0.25, dynamic_j=1.5, energy_j=1.75)
    assert type(copy) is TaskRecord and copy.wall_s == 1.5
    assert (t.static_j, t.dynamic_j, t.energy_j) == (0.0, 0.0, 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        copy.energy_j = 0.0  # type: ignore[misc]
