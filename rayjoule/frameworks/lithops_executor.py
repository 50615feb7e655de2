"""Chunks as Lithops functions: ``FunctionExecutor.map`` + reduce on the driver.

Default: the localhost backend and localhost storage (no cloud, no
credentials), ``localhost.runtime`` = this interpreter (otherwise Lithops
runs whatever ``python`` is on PATH) and ``worker_processes`` = concurrency.
``lithops_config`` takes a Lithops config file instead, so the same
comparison runs on a real cloud backend or MinIO storage.

Lithops' own per-call stats (worker start/end, function exec time) are kept
in the task records' timing, but its CPU figures are system-wide, so
attribution uses rayjoule's own per-call CPU time from ``run_chunk``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rayjoule.core.errors import ConfigError, RunFailed
from rayjoule.core.result import TaskRecord
from rayjoule.frameworks.base import Executor, OnTaskDone
from rayjoule.frameworks.chunk import collect, run_chunk

log = logging.getLogger(__name__)

#: the per-call future stats kept with each task record
LITHOPS_STATS = ("host_submit_tstamp", "worker_start_tstamp", "worker_func_start_tstamp",
                 "worker_func_end_tstamp", "worker_end_tstamp", "worker_exec_time",
                 "worker_func_exec_time", "worker_cold_start", "host_status_done_tstamp")


def _call(workload: Any, task_id: int, chunk: Any) -> tuple[Any, dict]:
    return run_chunk(workload, task_id, chunk)


def localhost_config(concurrency: int) -> dict[str, Any]:
    """Lithops config for the localhost backend running this very interpreter."""
    return {
        "lithops": {"backend": "localhost", "storage": "localhost", "log_level": "WARNING"},
        "localhost": {"runtime": sys.executable, "worker_processes": concurrency},
    }


def load_lithops_config(path: str) -> dict[str, Any]:
    """A user's Lithops YAML config file (the same format ``lithops`` itself reads)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"Lithops config file not found: {path}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"Lithops config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or "lithops" not in data:
        raise ConfigError(f"Lithops config file {path} has no 'lithops' section")
    return data


class LithopsExecutor(Executor):
    """Runs chunks through a Lithops FunctionExecutor."""

    name = "lithops"

    def __init__(self, config) -> None:
        super().__init__(config)
        self._fexec = None

    def open(self) -> None:
        try:
            import lithops
        except ImportError:
            raise ConfigError(
                "framework 'lithops' needs Lithops: pip install 'rayjoule[lithops]'"
            ) from None
        lithops_cfg = (load_lithops_config(self.config.lithops_config)
                       if self.config.lithops_config
                       else localhost_config(self.config.concurrency))
        logging.getLogger("lithops").setLevel(logging.WARNING)
        self._fexec = lithops.FunctionExecutor(config=lithops_cfg, log_level="WARNING")

    def close(self) -> None:
        if self._fexec is not None:
            try:
                self._fexec.clean(clean_cloudobjects=True)
            except Exception as exc:  # cleaning temp storage must not mask the run's outcome
                log.warning("Lithops clean-up failed: %s", exc)
            self._fexec = None

    def map(
        self, workload: Any, chunks: Sequence[Any], on_done: OnTaskDone | None = None
    ) -> tuple[list[Any], list[TaskRecord]]:
        assert self._fexec is not None, "open() first"
        iterdata = [{"workload": workload, "task_id": i, "chunk": c} for i, c in enumerate(chunks)]
        try:
            # on localhost the runtime is this interpreter, which imports rayjoule and the
            # workloads itself: shipping copies of their modules only adds work (and a stale
            # copy can shadow the installed package); a cloud runtime gets them shipped
            modules = None if self.config.lithops_config is None else []
            futures = self._fexec.map(_call, iterdata, include_modules=modules)
            outputs = self._fexec.get_result(futures)
        except Exception as exc:
            raise RunFailed(f"a Lithops call failed: {type(exc).__name__}: {exc}") from exc
        if len(chunks) == 1 and isinstance(outputs, tuple) and len(outputs) == 2 \
                and isinstance(outputs[1], dict):
            outputs = [outputs]
        # Lithops' timings ride along; its CPU figures are system-wide, so attribution keeps
        # using run_chunk's own per-call CPU time
        for (_, rec), future in zip(outputs, futures, strict=True):
            rec["framework_stats"] = {k: future.stats[k] for k in LITHOPS_STATS
                                      if k in future.stats}
        return collect(outputs, on_done)
