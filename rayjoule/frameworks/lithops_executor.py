"""Stages as Lithops functions: one ``FunctionExecutor.map`` per stage.

Default: the localhost backend and localhost storage (no cloud, no
credentials), ``localhost.runtime`` = this interpreter (otherwise Lithops
runs whatever ``python`` is on PATH) and ``worker_processes`` = concurrency.
``lithops_config`` takes a Lithops config file instead, so the same
comparison runs on a real cloud backend or MinIO storage.

Lithops' own per-call stats (worker start/end, function exec time, cold start)
are kept with each task record, but its CPU figures are system-wide, so
attribution uses the task's own CPU time. On a remote backend (any backend but
localhost) the driver's meters cannot see the calls, so every call meters itself
(``meters.CallMeter``: RAPL where readable, else the tdp model of the call's own
CPU time) and returns that energy with its record; the run's energy is then the
sum of the calls' (see :mod:`rayjoule.runs.session`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from rayjoule.core.errors import ConfigError, RunFailed
from rayjoule.frameworks.base import StoredStagesExecutor
from rayjoule.frameworks.job import Job, JobOutput, OnTaskDone, StagePlan
from rayjoule.frameworks.orphans import Reaper

log = logging.getLogger(__name__)

#: the per-call future stats kept with each task record
#: packages a cloud runtime must have installed, never shipped as copies
OWN_PACKAGES = ("rayjoule", "meters", "workloads")

#: how long a stage waits for Lithops' localhost job manager to finish the previous one
LOCALHOST_SETTLE_S = 60.0
#: how often a localhost stage checks that Lithops' job manager is still there
LOCALHOST_POLL_S = 5

LITHOPS_STATS = ("host_submit_tstamp", "worker_start_tstamp", "worker_func_start_tstamp",
                 "worker_func_end_tstamp", "worker_end_tstamp", "worker_exec_time",
                 "worker_func_exec_time", "worker_cold_start", "host_status_done_tstamp")


def localhost_config(concurrency: int) -> dict[str, Any]:
    """Lithops config for the localhost backend running this very interpreter."""
    return {
        "lithops": {"backend": "localhost", "storage": "localhost"},
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
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"Lithops config file {path} is not valid YAML{line}: "
                          f"{getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("lithops"), dict):
        raise ConfigError(f"Lithops config file {path} has no 'lithops' section")
    backend = data["lithops"].get("backend", "localhost")
    known = _known_backends()
    if known and backend not in known:
        raise ConfigError(f"Lithops config file {path}: unknown backend {backend!r} "
                          f"(known: {', '.join(sorted(known))})")
    return data


def _known_backends() -> set[str]:
    """Lithops' own list of compute backends (empty when Lithops is not installed)."""
    try:
        from lithops import constants
    except ImportError:
        return set()
    return {"localhost", *constants.SERVERLESS_BACKENDS, *constants.STANDALONE_BACKENDS}


class LithopsExecutor(StoredStagesExecutor):
    """Runs each stage through a Lithops FunctionExecutor ``map``; stages hand data over
    through the data store."""

    name = "lithops"

    def __init__(self, config) -> None:
        super().__init__(config)
        self._fexec = None
        self._backend = "localhost"
        self._reaper = Reaper()

    @property
    def remote(self) -> bool:
        """True when each call meters itself: calls run on machines the driver's meters do
        not see (any backend but localhost), or the config's ``rayjoule.meter_in_calls``
        says so (e.g. a localhost backend inside a container on another host)."""
        if self.config.lithops_config is None:
            return False
        cfg = load_lithops_config(self.config.lithops_config)
        setting = (cfg.get("rayjoule") or {}).get("meter_in_calls")
        if setting is not None and not isinstance(setting, bool):
            raise ConfigError(f"Lithops config {self.config.lithops_config}: "
                              f"rayjoule.meter_in_calls must be true or false, got {setting!r}")
        return _backend(cfg) != "localhost" if setting is None else setting

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
        lithops_cfg.pop("rayjoule", None)  # rayjoule's own settings; Lithops does not read them
        self._backend = _backend(lithops_cfg)
        # Lithops logs each failed call itself; rayjoule reports the failure in one line, so
        # its logger stays at ERROR unless rayjoule's own log level asks for more
        level = "DEBUG" if logging.getLogger("rayjoule").isEnabledFor(logging.DEBUG) \
            else "ERROR"
        lithops_cfg.setdefault("lithops", {})["log_level"] = level
        self._reaper.start()  # Lithops' local workers must not outlive a killed driver
        self._fexec = lithops.FunctionExecutor(config=lithops_cfg, log_level=level)

    def close(self) -> None:
        if self._fexec is not None:
            try:
                self._fexec.clean(clean_cloudobjects=True)
            except Exception as exc:  # cleaning temp storage must not mask the run's outcome
                log.warning("Lithops clean-up failed: %s", exc)
            self._fexec = None
        self._reaper.stop()
        super().close()

    def run(self, job: Job, on_done: OnTaskDone | None = None) -> JobOutput:
        assert self._fexec is not None, "open() first"
        return self.run_stages(job, self._map_stage, on_done)

    def _map_stage(self, fn, args, stage: StagePlan):
        meter = _call_meter_settings(stage) if self.remote else None
        iterdata = [{"args": (fn, *a), "meter": meter} for a in args]
        self._settle_localhost(stage)
        try:
            # on localhost the runtime is this interpreter, which imports rayjoule and the
            # workloads itself: shipping copies of modules only adds work (and a stale copy
            # can shadow the installed package). A cloud runtime gets the user's modules
            # shipped, but never copies of rayjoule, meters or workloads: the runtime image
            # must have rayjoule installed (a copy would lack its data files, e.g. the CPU
            # power table the in-call meter needs)
            local = self._backend == "localhost"
            futures = self._fexec.map(_call, iterdata, include_modules=None if local else [],
                                      exclude_modules=None if local else list(OWN_PACKAGES))
        except Exception as exc:
            raise RunFailed(f"submitting the Lithops calls of stage {stage.name!r} failed: "
                            f"{type(exc).__name__}: {exc}") from exc
        try:
            self._await_localhost(futures)
            outputs = self._fexec.get_result(futures)
        except Exception as exc:
            failed = [i for i, f in enumerate(futures) if getattr(f, "error", False)]
            which = f"task {failed[0]}" if failed else "a task"
            raise RunFailed(f"stage {stage.name!r} {which} (a Lithops call) failed: "
                            f"{type(exc).__name__}: {exc}") from exc
        if len(args) == 1 and isinstance(outputs, tuple) and len(outputs) == 2 \
                and isinstance(outputs[1], dict):
            outputs = [outputs]
        # Lithops' timings ride along; its CPU figures are system-wide, so attribution keeps
        # using the task's own CPU time
        for (_, rec), future in zip(outputs, futures, strict=True):
            rec["framework_stats"] = {k: future.stats[k] for k in LITHOPS_STATS
                                      if k in future.stats}
        return outputs

    def _await_localhost(self, futures: list) -> None:
        """Wait for a localhost job, restarting Lithops' job manager if it stopped early.

        The same race as :meth:`_settle_localhost`, seen from the other side: a job invoked
        while the previous job manager thread was on its way out is queued with no manager
        and no consumers, and would wait forever. Every few seconds with calls pending and
        no live manager, the manager is started again (it starts the consumers with it); a
        manager that outlived its consumers gets them started again.
        The job's own latch (counted down as each call's process ends) is what is waited
        on: Lithops' ``wait(timeout=…)`` ends with a SIGALRM raised wherever the driver is,
        which can leave a future half-read.
        """
        handler = getattr(self._fexec, "compute_handler", None)
        if self._backend != "localhost" or not hasattr(handler, "start_manager") or not futures:
            return
        latch = getattr(getattr(handler, "env", None), "jobs", {}).get(futures[0].job_key)
        event = getattr(latch, "event", None)
        if event is None:
            return
        while not event.wait(LOCALHOST_POLL_S):
            manager = getattr(handler, "job_manager", None)
            if manager is None or not manager.is_alive():
                log.info("Lithops' localhost job manager stopped with call(s) pending; "
                         "starting it again")
                handler.start_manager()
            elif not handler.env.consumer_threads:  # the manager outlived its workers
                log.info("Lithops' localhost workers stopped with call(s) pending; "
                         "starting them again")
                handler.env.start()

    def _settle_localhost(self, stage: StagePlan) -> None:
        """Wait until Lithops' localhost job manager has noticed the previous stage ended.

        Lithops' localhost backend stops its worker threads when a job's results are
        collected, and starts them for the next job only if its job-manager thread has
        already exited. A stage submitted before that thread wakes up (a busy machine) queues
        calls that nobody runs, and ``get_result`` waits forever. Between stages no call of
        this run is left running, so the thread ends within moments.
        """
        manager = getattr(self._fexec, "compute_handler", None)
        manager = getattr(manager, "job_manager", None) if self._backend == "localhost" else None
        if manager is None:
            return
        manager.join(LOCALHOST_SETTLE_S)
        if manager.is_alive():
            raise RunFailed(f"Lithops' localhost backend was still busy with the previous "
                            f"stage {LOCALHOST_SETTLE_S:g} s after it ended; stage "
                            f"{stage.name!r} was not submitted")


def _backend(cfg: dict[str, Any]) -> str:
    return str((cfg.get("lithops") or {}).get("backend", "localhost"))


def _call_meter_settings(stage: StagePlan) -> dict[str, Any]:
    """What an in-function meter needs to model a call: its vCPUs (the stage's CPUs)."""
    return {"vcpus": stage.num_cpus}


def _call(args: tuple, meter: dict[str, Any] | None) -> tuple[Any, dict]:
    """One Lithops call; on a remote backend it meters itself (the driver's host cannot)."""
    if meter is None:
        return args[0](*args[1:])
    from meters import CallMeter

    with CallMeter(vcpus=meter.get("vcpus")) as call_meter:
        output, record = args[0](*args[1:])
    record["call_energy"] = call_meter.result
    return output, record
