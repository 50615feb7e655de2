"""Run one chunk of a workload and record where, when and how much CPU it took.

This is the only code that runs inside workers, on every framework. CPU time
is the worker process's own (``time.process_time``), which is what the
attribution rule splits energy by.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from rayjoule.cluster.hosts import host_key


def run_chunk(workload: Any, task_id: int, chunk: Any, node_id: str = "") -> tuple[Any, dict]:
    """Apply ``workload.map`` to ``chunk``; return (partial, task record dict without energy)."""
    start = time.time()
    cpu0 = time.process_time()
    partial = workload.map(chunk)
    cpu_s = time.process_time() - cpu0
    end = time.time()
    host = host_key()
    record = {
        "task_id": task_id,
        "node_id": node_id or host,
        "host": host,
        "pid": os.getpid(),
        "start": start,
        "end": end,
        "cpu_s": cpu_s,
    }
    return partial, record


def collect(
    outputs: Iterable[tuple[Any, dict]], on_done: Callable[[Any], None] | None = None
) -> tuple[list[Any], list[Any]]:
    """``run_chunk`` outputs, in chunk order → (partials, TaskRecords), reporting each record."""
    from rayjoule.core.result import TaskRecord

    partials, records = [], []
    for partial, rec in outputs:
        record = TaskRecord(**rec)
        partials.append(partial)
        records.append(record)
        if on_done:
            on_done(record)
    return partials, records
