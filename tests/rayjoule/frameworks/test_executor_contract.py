"""Every built-in executor proves itself against :class:`rayjoule.testing.ExecutorContract`.

Each subclass only says how to build its config; the tests are the shipped suite, the same
one a third-party executor's tests subclass (see test_plugins.py).
"""

from __future__ import annotations

import pytest

from rayjoule.testing import ExecutorContract, contract_config


class TestNativeInProcess(ExecutorContract):
    in_process = True

    def config(self, **overrides):
        return contract_config("native", concurrency=1, **overrides)


class TestNativePool(ExecutorContract):
    def config(self, **overrides):
        return contract_config("native", concurrency=2, **overrides)


@pytest.mark.usefixtures("ray_session")
class TestRayTasks(ExecutorContract):
    #: Ray, not the executor, owns its idle task workers and keeps them for later tasks
    workers_outlive_close = True

    def config(self, **overrides):
        return contract_config("ray", concurrency=2, **overrides)


@pytest.mark.usefixtures("ray_session")
class TestRayTasksUnderAPlacementGroup(TestRayTasks):
    """concurrency 1 < CPUs: the scheduler, not the driver, enforces the limit."""

    def config(self, **overrides):
        return contract_config("ray", concurrency=1, **overrides)


@pytest.mark.usefixtures("ray_session")
class TestRayActors(ExecutorContract):
    def config(self, **overrides):
        return contract_config("ray", mode="actors", concurrency=2, **overrides)


class TestLithopsLocalhost(ExecutorContract):
    @pytest.fixture(autouse=True)
    def _needs_lithops(self):
        pytest.importorskip("lithops")

    def config(self, **overrides):
        return contract_config("lithops", concurrency=2, **overrides)
