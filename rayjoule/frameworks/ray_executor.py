"""Chunks as Ray tasks (``mode tasks``) or fed to a pool of worker actors (``mode actors``).

Tasks are named ``<workload>.map`` and actors ``rayjoule-worker`` so the Ray
dashboard is legible. Every chunk records the node it ran on, so each task's
energy comes from the meter of its own physical host. The actor pool lives as
long as the executor (one run's repeats, one compare session): started by the
first map, inside its meter window, reused by later ones, killed on close.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from rayjoule.cluster.connect import connect, disconnect
from rayjoule.core.errors import ConfigError, RunFailed
from rayjoule.core.result import TaskRecord
from rayjoule.frameworks.base import Executor, OnTaskDone
from rayjoule.frameworks.chunk import collect, run_chunk

log = logging.getLogger(__name__)

WORKER_NAME = "rayjoule-worker"


def _map_chunk(workload: Any, task_id: int, chunk: Any) -> tuple[Any, dict]:
    import ray

    return run_chunk(workload, task_id, chunk, ray.get_runtime_context().get_node_id())


class RayjouleWorker:
    """A long-lived worker actor: the same process runs many chunks (no per-task start-up)."""

    def run(self, workload: Any, task_id: int, chunk: Any) -> tuple[Any, dict]:
        return _map_chunk(workload, task_id, chunk)


class RayExecutor(Executor):
    """Runs chunks on a local Ray instance or the cluster at ``config.address``."""

    name = "ray"

    def __init__(self, config) -> None:
        super().__init__(config)
        self._started_here = False
        self._cluster_cpus = 0.0
        self._remote = None
        self._workers: list[Any] = []

    def open(self) -> None:
        self._started_here = connect(self.config.address, keep_alive=self.config.keep_alive)
        import ray

        self._cluster_cpus = ray.cluster_resources().get("CPU", 0)
        if self.config.num_cpus > self._cluster_cpus:
            raise ConfigError(f"num_cpus {self.config.num_cpus} per task exceeds the cluster's "
                              f"{self._cluster_cpus:g} CPUs")

    def close(self) -> None:
        if self._workers and ray_is_up():
            self._kill_workers()
        if self._started_here and not self.config.keep_alive:
            disconnect()

    def map(
        self, workload: Any, chunks: Sequence[Any], on_done: OnTaskDone | None = None
    ) -> tuple[list[Any], list[TaskRecord]]:
        import ray

        wl_ref = ray.put(workload)
        if self.config.mode == "actors":
            return self._actors(ray, wl_ref, workload.name, chunks, on_done)
        return self._tasks(ray, wl_ref, workload.name, chunks, on_done)

    def _tasks(self, ray, wl_ref, name, chunks, on_done):
        if self._remote is None:  # defined once per executor: Ray exports it once
            self._remote = ray.remote(_map_chunk)
        remote = self._remote.options(
            name=f"{name}.map", num_cpus=self.config.num_cpus, max_retries=3,
            retry_exceptions=False,
        )
        limit = self.config.concurrency
        pending: dict[Any, int] = {}
        next_i = 0
        results: dict[int, tuple[Any, dict]] = {}
        try:
            while next_i < len(chunks) or pending:
                while next_i < len(chunks) and len(pending) < limit:
                    pending[remote.remote(wl_ref, next_i, chunks[next_i])] = next_i
                    next_i += 1
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    i = pending.pop(ref)
                    results[i] = _get(ray, ref, i)
                    if on_done:
                        on_done(TaskRecord(**results[i][1]))
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return _ordered(results, len(chunks))

    def _actors(self, ray, wl_ref, name, chunks, on_done):
        from ray.util import ActorPool

        pool = ActorPool(self._worker_pool(ray, len(chunks)))
        results: dict[int, tuple[Any, dict]] = {}
        try:
            for i in range(len(chunks)):
                pool.submit(lambda a, i: a.run.options(name=f"{name}.map").remote(
                    wl_ref, i, chunks[i]), i)
            while pool.has_next():
                try:
                    partial, rec = pool.get_next_unordered()
                except Exception as exc:
                    raise _failure(ray, exc, None) from exc
                results[rec["task_id"]] = (partial, rec)
                if on_done:
                    on_done(TaskRecord(**rec))
        except BaseException:
            self._kill_workers()  # a failed or interrupted pool is not reused
            raise
        return _ordered(results, len(chunks))

    def _worker_pool(self, ray, n_chunks: int) -> list[Any]:
        """The session's worker actors, started by the first map (inside its meter window).

        Like Ray's own task workers, they are long-lived: later repeats reuse them, so
        only the first run of a session pays their start-up, and its energy is measured.
        """
        if self._workers:
            return self._workers
        # actors hold their CPUs for life: more than the cluster can place would never start,
        # and work handed to them would wait forever
        fits = max(1, int(self._cluster_cpus // self.config.num_cpus))
        size = min(self.config.concurrency, n_chunks, fits)
        cls = ray.remote(RayjouleWorker)
        token = uuid.uuid4().hex[:8]
        self._workers = [cls.options(name=f"{WORKER_NAME}-{token}-{k}",
                                     num_cpus=self.config.num_cpus, max_restarts=0).remote()
                         for k in range(size)]
        return self._workers

    def _kill_workers(self) -> None:
        import ray

        workers, self._workers = self._workers, []
        for actor in workers:
            ray.kill(actor)


def ray_is_up() -> bool:
    import ray

    return ray.is_initialized()


def _get(ray, ref, i):
    try:
        return ray.get(ref)
    except Exception as exc:
        raise _failure(ray, exc, i) from exc


def _failure(ray, exc: BaseException, task_id: int | None) -> RunFailed:
    """A readable RunFailed for a task error or a dead worker."""
    where = f"task {task_id}" if task_id is not None else "a task"
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        return RunFailed(f"{where} raised {type(cause).__name__}: {cause}")
    if isinstance(exc, ray.exceptions.WorkerCrashedError | ray.exceptions.ActorDiedError):
        return RunFailed(f"the Ray worker running {where} died ({type(exc).__name__})")
    return RunFailed(f"{where} failed: {type(exc).__name__}: {exc}")


def _ordered(results: dict[int, tuple[Any, dict]], n: int):
    return collect(results[i] for i in range(n))
