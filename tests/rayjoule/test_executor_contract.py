"""The ExecutorContract: what every framework's executor must do, tested once, run for each.

Each executor class gets a subclass that only says how to build its config; the tests
(order of results, one progress callback per task, a raising task → RunFailed naming it,
a dead worker → RunFailed, close idempotent, a multi-stage pipeline identical to the
serial reference) are shared, so a new framework proves itself by subclassing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import workloads
from rayjoule.core.config import RunConfig
from rayjoule.core.errors import RunFailed
from rayjoule.frameworks import executor_for
from rayjoule.frameworks.job import plan_job
from tests_support import failing_workloads as fw


def job_for(workload, tasks: int, pipeline=None, size=None, params=None):
    pipe = pipeline or workloads.as_pipeline(workload)
    size, params, by_stage = pipe.validate(size, tasks, params or {}, 0)
    cpus = pipe.validate_per_stage("num_cpus", 1.0)
    return plan_job(pipe, size, 0, params, by_stage, cpus)


class ExecutorContract:
    """Subclass with ``config(**overrides) -> RunConfig``; set ``in_process`` when a task
    runs inside the test process (a killed worker would kill the test)."""

    in_process = False

    def config(self, **overrides) -> RunConfig:
        raise NotImplementedError

    def executor(self, **overrides):
        return executor_for(self.config(**overrides).validated())

    def test_results_come_back_in_task_order(self):
        with self.executor() as ex:
            out = ex.run(job_for(fw.numbered(), 5))
        assert out.sinks["map"] == [0, 10, 20, 30, 40]
        assert sorted(r.task_id for r in out.records) == [0, 1, 2, 3, 4]
        assert {r.stage for r in out.records} == {"map"}

    def test_one_progress_callback_per_task(self):
        seen = []
        with self.executor() as ex:
            out = ex.run(job_for(fw.numbered(), 6), seen.append)
        assert sorted(r.task_id for r in seen) == list(range(6))
        assert len(seen) == len(out.records) == 6

    def test_a_raising_task_fails_the_run_naming_the_task(self):
        with self.executor() as ex, pytest.raises(RunFailed, match=r"task 2 .*cursed"):
            ex.run(job_for(fw.cursed_at_2(), 4))

    def test_a_dead_worker_fails_the_run(self):
        if self.in_process:
            pytest.skip("tasks run inside this process: killing the worker kills the test")
        with self.executor() as ex, pytest.raises(RunFailed):
            ex.run(job_for(fw.killer_at_1(), 3))

    def test_close_is_idempotent(self):
        ex = self.executor()
        ex.open()
        ex.run(job_for(fw.numbered(), 2))
        ex.close()
        ex.close()

    def test_a_pipeline_matches_the_serial_reference(self):
        pipe = workloads.get_pipeline("wordcount")
        tasks = {"map": 3, "reduce": 2}
        reference = workloads.execute_pipeline("wordcount", size=3000, tasks=tasks)
        size, params, by_stage = pipe.validate(3000, tasks, {}, 0)
        job = plan_job(pipe, size, 0, params, by_stage, pipe.validate_per_stage("num_cpus", 1))
        with self.executor() as ex:
            out = ex.run(job)
        assert pipe.summary(out.sinks) == reference
        assert sorted((r.stage, r.task_id) for r in out.records) == sorted(
            (s, i) for s, n in by_stage.items() for i in range(n))


def base(**overrides) -> RunConfig:
    fields = dict(workload="sleep", size=0, meter="tdp", idle_seconds=0)
    return RunConfig(**{**fields, **overrides})


class TestNativeInProcess(ExecutorContract):
    in_process = True

    def config(self, **overrides):
        return base(framework="native", concurrency=1, **overrides)


class TestNativePool(ExecutorContract):
    def config(self, **overrides):
        return base(framework="native", concurrency=2, **overrides)


@pytest.mark.usefixtures("ray_session")
class TestRayTasks(ExecutorContract):
    @pytest.fixture(autouse=True)
    def _ship(self):
        fw.ship_by_value()

    def config(self, **overrides):
        return base(framework="ray", concurrency=2, **overrides)


@pytest.mark.usefixtures("ray_session")
class TestRayTasksUnderAPlacementGroup(TestRayTasks):
    """concurrency 1 < CPUs: the scheduler, not the driver, enforces the limit."""

    def config(self, **overrides):
        return base(framework="ray", concurrency=1, **overrides)


@pytest.mark.usefixtures("ray_session")
class TestRayActors(TestRayTasks):
    def config(self, **overrides):
        return base(framework="ray", mode="actors", concurrency=2, **overrides)


class TestLithopsLocalhost(ExecutorContract):
    @pytest.fixture(autouse=True)
    def _needs_lithops(self, monkeypatch):
        pytest.importorskip("lithops")
        # Lithops' local workers are fresh interpreters: they find the test workloads
        # through PYTHONPATH, as a user's own modules would be found
        # (the repository root first: tests/workloads must not shadow the workloads package)
        tests_dir = Path(fw.__file__).resolve().parent.parent
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
            p for p in (str(tests_dir.parent), str(tests_dir), os.environ.get("PYTHONPATH", ""))
            if p))

    def config(self, **overrides):
        return base(framework="lithops", concurrency=2, **overrides)
