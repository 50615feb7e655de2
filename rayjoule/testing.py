"""What every executor and every metering must do: conformance suites their tests subclass.

Shipped inside the package (as ``optuna.testing`` and :mod:`meters.testing` are) so that a
third party's executor or metering proves itself against the same contract as the
built-in ones::

    from rayjoule.testing import ExecutorContract, MeteringContract, contract_config

    class TestDaskExecutor(ExecutorContract):
        def config(self, **overrides):
            return contract_config("dask", concurrency=2, **overrides)

    class TestDaskMetering(MeteringContract):
        @pytest.fixture
        def make_metering(self):
            return lambda: DaskMetering.from_config(contract_config("dask"))

The suites check the contracts written in :class:`rayjoule.frameworks.Executor`'s and
:class:`rayjoule.metering.Metering`'s docstrings. The workloads they run live here, at
module level, so every framework's workers can import them (nothing is shipped by value).

This module imports pytest, so rayjoule never imports it: only tests do.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

import workloads
from meters import KINDS
from rayjoule.cluster.hosts import host_key
from rayjoule.core.config import RunConfig
from rayjoule.core.errors import RunFailed
from rayjoule.frameworks import Executor, executor_for
from rayjoule.frameworks.job import Job, plan_job
from rayjoule.metering import Metering
from rayjoule.metering.host_meter import IdleBaseline, WindowEnergy

__all__ = ["ExecutorContract", "MeteringContract", "contract_config", "contract_job"]


# -- the workloads the executor contract runs ------------------------------------------
def _numbered_partition(tasks: int, size: Any, seed: int, params: Any) -> list[int]:
    return list(range(tasks))


def _times_ten(chunk: int) -> int:
    return chunk * 10


def _times_ten_or_raise_at_2(chunk: int) -> int:
    if chunk == 2:
        raise ValueError("chunk 2 is cursed")
    return chunk * 10


def _kill_at_1(chunk: int) -> int:
    if chunk == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return chunk


def _as_list(partials: list[Any]) -> list[Any]:
    return list(partials)


def _as_summary(result: list[Any]) -> dict[str, Any]:
    return {"values": result}


def numbered(name: str = "numbered", map_fn: Callable[[int], int] = _times_ten) -> Any:
    """A workload whose chunk i maps to ``map_fn(i)``; the summary lists them in order."""
    return dataclasses.replace(workloads.get("sleep"), name=name, partition=_numbered_partition,
                               map=map_fn, reduce=_as_list, summary=_as_summary)


def contract_job(workload: Any, tasks: int) -> Job:
    """The one-stage job of ``workload`` with ``tasks`` tasks, as a session would plan it."""
    pipe = workloads.as_pipeline(workload)
    size, params, by_stage = pipe.validate(None, tasks, {}, 0)
    return plan_job(pipe, size, 0, params, by_stage, pipe.validate_per_stage("num_cpus", 1.0))


def contract_config(framework: str, **overrides: Any) -> RunConfig:
    """A cheap config for ``framework``: the ``sleep`` workload of size 0, the tdp model,
    no idle baseline; ``overrides`` replace any field."""
    fields: dict[str, Any] = dict(workload="sleep", size=0, meter="tdp", idle_seconds=0,
                                  framework=framework)
    return RunConfig(**{**fields, **overrides})


def _alive(pids: set[int], timeout_s: float) -> set[int]:
    """The processes among ``pids`` still running (not zombies) after up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = set()
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.add(pid)
            except psutil.Error:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


class ExecutorContract:
    """Subclass with ``config(**overrides) -> RunConfig`` (see :func:`contract_config`).

    Set ``in_process`` when tasks run inside the test process (killing a worker would kill
    the test), and ``workers_outlive_close`` when the framework, not the executor, owns the
    worker processes (Ray keeps its idle task workers).
    """

    in_process = False
    workers_outlive_close = False

    def config(self, **overrides: Any) -> RunConfig:
        raise NotImplementedError("return the RunConfig of the executor under test")

    def executor(self, **overrides: Any) -> Executor:
        return executor_for(self.config(**overrides).validated())

    def test_is_an_executor_named_after_its_framework(self) -> None:
        ex = self.executor()
        assert isinstance(ex, Executor)
        assert ex.name == ex.config.framework
        assert isinstance(ex.remote, bool)

    def test_results_come_back_in_task_order(self) -> None:
        with self.executor() as ex:
            out = ex.run(contract_job(numbered(), 5))
        assert out.sinks["map"] == [0, 10, 20, 30, 40]
        assert sorted(r.task_id for r in out.records) == [0, 1, 2, 3, 4]
        assert {r.stage for r in out.records} == {"map"}

    def test_one_progress_callback_per_task(self) -> None:
        seen: list[Any] = []
        with self.executor() as ex:
            out = ex.run(contract_job(numbered(), 6), seen.append)
        assert sorted(r.task_id for r in seen) == list(range(6))
        assert len(seen) == len(out.records) == 6

    def test_check_accepts_a_job_that_fits(self) -> None:
        with self.executor() as ex:
            ex.check(contract_job(numbered(), 2))  # raises ConfigError if it refuses

    def test_a_raising_task_fails_the_run_naming_the_task(self) -> None:
        with self.executor() as ex, pytest.raises(RunFailed, match=r"task 2 .*cursed"):
            ex.run(contract_job(numbered("cursed2", _times_ten_or_raise_at_2), 4))

    def test_a_dead_worker_fails_the_run_and_the_next_run_works(self) -> None:
        if self.in_process:
            pytest.skip("tasks run inside this process: killing the worker kills the test")
        with self.executor() as ex:
            with pytest.raises(RunFailed):
                ex.run(contract_job(numbered("killer1", _kill_at_1), 3))
            assert ex.run(contract_job(numbered(), 2)).sinks["map"] == [0, 10]

    def test_close_is_idempotent_and_releases_the_workers(self) -> None:
        ex = self.executor()
        ex.open()
        out = ex.run(contract_job(numbered(), 2))
        here = host_key()
        workers = {r.pid for r in out.records if r.host == here} - {os.getpid()}
        ex.close()
        ex.close()
        if not self.workers_outlive_close:
            assert _alive(workers, timeout_s=10.0) == set()
        with self.executor() as again:  # what close released can be had again
            assert again.run(contract_job(numbered(), 2)).sinks == out.sinks

    def test_a_pipeline_matches_the_serial_reference(self) -> None:
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


class MeteringContract:
    """Subclass with a ``make_metering`` fixture: a zero-argument callable returning a new,
    open :class:`~rayjoule.metering.Metering`. ``window_s`` is how long a window stays open."""

    window_s = 0.05

    @pytest.fixture
    def metering(self, make_metering: Callable[[], Metering]) -> Iterator[Metering]:
        m = make_metering()
        try:
            yield m
        finally:
            m.close()

    def _window(self, metering: Metering) -> dict[str, WindowEnergy]:
        metering.start()
        time.sleep(self.window_s)
        return metering.stop()

    def test_is_a_metering_with_a_label(self, metering: Metering) -> None:
        assert isinstance(metering, Metering)
        assert isinstance(metering.label.name, str) and metering.label.name
        assert metering.label.kind in KINDS

    def test_host_info_is_json_safe_and_keyed_by_host(self, metering: Metering) -> None:
        info = metering.host_info
        assert all(isinstance(h, str) and isinstance(d, dict) for h, d in info.items())
        json.dumps(info)

    def test_idle_covers_every_metered_host(self, metering: Metering) -> None:
        idle = metering.idle(0)
        assert set(idle) == set(metering.host_info)
        for baseline in idle.values():
            assert isinstance(baseline, IdleBaseline)
            assert math.isfinite(baseline.watts) and baseline.watts >= 0
            assert isinstance(baseline.policy, str)

    def test_a_window_measures_every_metered_host(self, metering: Metering) -> None:
        windows = self._window(metering)
        assert set(windows) == set(metering.host_info)
        for host, w in windows.items():
            assert isinstance(w, WindowEnergy)
            assert w.host == host
            assert w.t1 >= w.t0
            assert math.isfinite(w.total_j) and w.total_j >= 0
            assert w.meter.kind in KINDS
            assert w.complete

    def test_windows_follow_each_other(self, metering: Metering) -> None:
        first = self._window(metering)
        second = self._window(metering)
        assert set(first) == set(second)
        for host in first:
            assert second[host].t0 >= first[host].t1

    def test_stop_without_a_window_returns_nothing(self, metering: Metering) -> None:
        assert metering.stop() == {}
        self._window(metering)
        assert metering.stop() == {}

    def test_record_tasks_accepts_no_tasks(self, metering: Metering) -> None:
        self._window(metering)
        metering.record_tasks([])
        assert set(self._window(metering)) == set(metering.host_info)

    def test_close_is_idempotent_and_stops_every_thread(
            self, make_metering: Callable[[], Metering]) -> None:
        metering = make_metering()
        before = set(threading.enumerate())
        metering.start()  # a window left open: close must still stop its sampling
        metering.close()
        metering.close()
        deadline = time.monotonic() + 10.0
        while (left := [t for t in threading.enumerate() if t not in before and t.is_alive()]) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert left == []
