"""The native baseline: chunks in the calling process, or a process pool.

Every framework's overhead is measured against this, so it does as little as
possible: ``concurrency`` 1 runs the chunks one after another in-process;
more uses ``concurrent.futures.ProcessPoolExecutor`` of that size.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from rayjoule.core.errors import RunFailed
from rayjoule.core.result import TaskRecord
from rayjoule.frameworks.base import Executor, OnTaskDone
from rayjoule.frameworks.chunk import collect, run_chunk


class NativeExecutor(Executor):
    """Plain Python: in-process when concurrency is 1, else a process pool."""

    name = "native"

    def map(
        self, workload: Any, chunks: Sequence[Any], on_done: OnTaskDone | None = None
    ) -> tuple[list[Any], list[TaskRecord]]:
        workers = min(self.config.concurrency, len(chunks))
        if workers <= 1:
            return self._serial(workload, chunks, on_done)
        return self._pool(workload, chunks, workers, on_done)

    def _serial(self, workload, chunks, on_done):
        def outputs():
            for i, chunk in enumerate(chunks):
                try:
                    yield run_chunk(workload, i, chunk)
                except Exception as exc:
                    raise RunFailed(f"task {i} raised {type(exc).__name__}: {exc}") from exc

        return collect(outputs(), on_done)

    def _pool(self, workload, chunks, workers, on_done):
        partials: list[Any] = [None] * len(chunks)
        records: list[TaskRecord | None] = [None] * len(chunks)
        with cf.ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(run_chunk, workload, i, c): i for i, c in enumerate(chunks)}
            try:
                for fut in cf.as_completed(futures):
                    i = futures[fut]
                    try:
                        partial, rec = fut.result()
                    except BrokenProcessPool as exc:
                        raise RunFailed(
                            f"a worker process died while running task {i} ({exc})"
                        ) from exc
                    except Exception as exc:
                        raise RunFailed(f"task {i} raised {type(exc).__name__}: {exc}") from exc
                    partials[i] = partial
                    records[i] = TaskRecord(**rec)
                    if on_done:
                        on_done(records[i])
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        return partials, [r for r in records if r is not None]
