import math

import pytest

from rayjoule.core.attribution import attribute
from rayjoule.core.result import TaskRecord


def task(i, host, cpu, start=0.0, end=1.0):
    return TaskRecord(i, "node", host, 100 + i, start, end, cpu)


def test_split_is_proportional_to_cpu_and_conserves_energy():
    tasks = [task(0, "a", 1.0), task(1, "a", 3.0), task(2, "b", 2.0), task(3, "b", 2.0)]
    done, rest = attribute(tasks, {"a": 40.0, "b": 10.0})
    assert [t.energy_j for t in done] == pytest.approx([10.0, 30.0, 5.0, 5.0])
    assert math.fsum(t.energy_j for t in done) == pytest.approx(50.0)
    assert rest == {"a": 0.0, "b": 0.0}


def test_tasks_without_cpu_time_split_by_wall_time():
    tasks = [task(0, "a", 0.0, 0.0, 1.0), task(1, "a", 0.0, 0.0, 3.0)]
    done, _ = attribute(tasks, {"a": 8.0})
    assert [t.energy_j for t in done] == pytest.approx([2.0, 6.0])


def test_host_without_tasks_keeps_its_energy_unattributed():
    done, rest = attribute([task(0, "a", 1.0)], {"a": 5.0, "driver": 7.0})
    assert done[0].energy_j == pytest.approx(5.0)
    assert rest["driver"] == 7.0


def test_task_on_unmetered_host_is_an_error():
    with pytest.raises(ValueError, match="no meter"):
        attribute([task(0, "ghost", 1.0)], {"a": 1.0})
