"""What a tune checks and sizes before its first trial: stage caps, CPUs, the storage.

Why apart from the search space (:mod:`.space`): these need the pipeline, the cluster or
the Optuna storage, and every one of them must fail as bad input (one line, exit 2)
before any trial spends a joule.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from rayjoule.core.errors import ConfigError
from rayjoule.tuning.space import Range
from rayjoule.tuning.tuner import storage_lock


def cap_to_stages(ranges: Mapping[str, Range], pipeline: Any) -> dict[str, Range]:
    """A stage that must run as at most N tasks (an aggregate) is searched within 1..N.

    >>> from workloads import get_pipeline
    >>> cap_to_stages({"map": Range(1, 64), "top": Range(1, 64)}, get_pipeline("wordcount"))
    {'map': Range(low=1, high=64), 'top': Range(low=1, high=1)}
    """
    capped = {}
    for stage, r in ranges.items():
        cap = pipeline.stage(stage).max_tasks
        if cap is not None and r.high > cap:
            r = dataclasses.replace(r, low=min(r.low, cap), high=cap)
        capped[stage] = r
    return capped


def check_num_cpus(num_cpus: Mapping[str, Range], cluster_cpus: int,
                   frameworks: tuple[str, ...]) -> None:
    """A --num-cpus range beyond the cluster is bad input, found before any trial runs."""
    if "ray" not in frameworks:
        return
    for stage, r in num_cpus.items():
        if r.low > cluster_cpus:
            raise ConfigError(f"--num-cpus {r.low:g} for stage {stage!r} exceeds the "
                              f"cluster's {cluster_cpus} CPUs")


def check_storage(url: str) -> None:
    """Parse and connect to the Optuna storage up front: a bad URL is one line, exit 2."""
    import optuna
    import sqlalchemy.exc

    try:
        with storage_lock(url):
            optuna.storages.get_storage(url)
    except (ValueError, ImportError, sqlalchemy.exc.SQLAlchemyError) as exc:
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--storage {url!r} is not a usable Optuna storage: {line}") from None


def cluster_cpus(frameworks: tuple[str, ...], address: str | None,
                 keep_alive: bool = False) -> tuple[int, bool]:
    """CPUs to size the concurrency range, and whether Ray was started here (to stop it).

    Connects to Ray first when Ray is searched; otherwise this machine's CPUs.
    """
    if "ray" not in frameworks:
        return os.cpu_count() or 1, False
    import ray

    from rayjoule.cluster.connect import connect

    started = connect(address, keep_alive=keep_alive)
    return int(ray.cluster_resources().get("CPU", 1)), started
