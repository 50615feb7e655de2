"""The native baseline: tasks in the calling process, or a warm process pool.

Every framework's overhead is measured against this, so it does as little as possible:
``concurrency`` 1 runs every task in-process, one after another; more uses one
``concurrent.futures.ProcessPoolExecutor`` of that size, started inside the first run's
meter window (its start-up is measured, like Ray's workers') and kept warm for later
repeats, like Ray's. Tasks go out with ``pool.map`` in batches (no per-task driver round
trip). The pool's workers die with the driver (``PR_SET_PDEATHSIG``), even on SIGKILL.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from rayjoule.core.errors import RunFailed
from rayjoule.frameworks.base import StoredStagesExecutor
from rayjoule.frameworks.job import Job, JobOutput, OnTaskDone, StagePlan
from rayjoule.frameworks.orphans import die_with_parent


class NativeExecutor(StoredStagesExecutor):
    """Plain Python: in-process when concurrency is 1, else a warm process pool."""

    name = "native"

    def __init__(self, config) -> None:
        super().__init__(config)
        self._pool: cf.ProcessPoolExecutor | None = None

    def run(self, job: Job, on_done: OnTaskDone | None = None) -> JobOutput:
        runner = self._serial if self.config.concurrency <= 1 else self._pooled
        return self.run_stages(job, runner, on_done)

    def _serial(self, fn: Callable[..., Any], args: list[tuple[Any, ...]],
                stage: StagePlan) -> list[tuple[Any, dict]]:
        outputs = []
        for i, a in enumerate(args):
            try:
                outputs.append(fn(*a))
            except Exception as exc:
                raise _task_failed(stage, i, exc) from exc
        return outputs

    def _pooled(self, fn: Callable[..., Any], args: list[tuple[Any, ...]],
                stage: StagePlan) -> list[tuple[Any, dict]]:
        pool = self._warm_pool()
        workers = self.config.concurrency
        chunksize = max(1, len(args) // (workers * 8))
        outputs: list[tuple[Any, dict]] = []
        try:
            for out in pool.map(_call, [(fn, a) for a in args], chunksize=chunksize):
                outputs.append(out)
        except BrokenProcessPool as exc:
            self._discard_pool()
            raise RunFailed(f"a worker process died while running stage {stage.name!r} "
                            f"task {len(outputs)} or later ({exc})") from exc
        except _TaskError as exc:
            raise _task_failed(stage, exc.index, exc.cause) from exc.cause
        except BaseException:
            self._discard_pool()  # interrupted: do not leave work running
            raise
        return outputs

    def _warm_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.config.concurrency, initializer=_worker_init,
                mp_context=multiprocessing.get_context("fork"),
            )
        return self._pool

    def _discard_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:  # a stuck or long task would otherwise keep running
            if proc.is_alive():
                proc.kill()
        for proc in processes:
            proc.join(5)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        super().close()


def _worker_init() -> None:
    """A pool worker dies with its parent and leaves stops to it: Ctrl-C at a terminal, or a
    SIGTERM sent to the process group (``timeout``, ``kill -- -PGID``), reaches the workers
    too, and their inherited handlers raised in each idle worker ("Process ForkProcess-1:"
    and a traceback beside the command's one line). The parent decides what a stop means
    and ends the workers itself (or the kernel does, through :func:`die_with_parent`)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent()


class _TaskError(Exception):
    """A task's exception, carried out of the pool with the task's index."""

    def __init__(self, index: int, cause: BaseException) -> None:
        super().__init__(index, cause)
        self.index, self.cause = index, cause


def _call(item: tuple[Callable[..., Any], Sequence[Any]]) -> tuple[Any, dict]:
    fn, args = item
    try:
        return fn(*args)
    except Exception as exc:
        raise _TaskError(args[2].index, exc) from None


def _task_failed(stage: StagePlan, index: int, exc: BaseException) -> RunFailed:
    return RunFailed(f"stage {stage.name!r} task {index} raised {type(exc).__name__}: {exc}")
