"""Run one chunk of a workload and record where, when and how much CPU it took.

This is the only code that runs inside workers, on every framework. CPU time
is the worker process's own (``time.process_time``), which is what the
attribution rule splits energy by.
"""

from __future__ import annotations

import os
import time
from typing import Any

from rayjoule.hostid import host_key


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


class TaskError(Exception):
    """A chunk raised: carries the task id and a readable cause for RunFailed."""

    def __init__(self, task_id: int, cause: str) -> None:
        super().__init__(f"task {task_id} failed: {cause}")
        self.task_id = task_id
        self.cause = cause
