"""Shared fixtures: one local Ray instance per test session (starting Ray costs seconds)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DISABLE_DOCKER_CPU_WARNING", "1")


@pytest.fixture(scope="session")
def ray_session():
    """A 2-CPU local Ray instance shared by every Ray test; rayjoule reuses it."""
    import ray

    if not ray.is_initialized():
        # address="local": always a fresh instance, even when a head kept alive by
        # `--keep-alive` (or any `ray start`) runs on this machine
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level="WARNING")
    yield ray
    ray.shutdown()
