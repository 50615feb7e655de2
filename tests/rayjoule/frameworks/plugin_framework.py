"""An example third-party framework, as a plug-in registers it under ``rayjoule.frameworks``
(its executor) and ``rayjoule.metering`` (how its work is metered).

``inline`` runs every task in the calling process, one after another, through the same
stage loop the built-in store-based executors use; its metering is a constant-power model
of this host. Both prove themselves with the suites in :mod:`rayjoule.testing`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rayjoule.cluster.hosts import host_key
from rayjoule.core.config import RunConfig
from rayjoule.core.errors import RunFailed
from rayjoule.core.result import MeterLabel
from rayjoule.frameworks.base import StoredStagesExecutor
from rayjoule.frameworks.job import Job, JobOutput, OnTaskDone, StagePlan
from rayjoule.metering import Metering
from rayjoule.metering.host_meter import IdleBaseline, WindowEnergy

WATTS = 7.0


class InlineExecutor(StoredStagesExecutor):
    """Every task in this process, in order."""

    name = "inline"

    def run(self, job: Job, on_done: OnTaskDone | None = None) -> JobOutput:
        return self.run_stages(job, self._serial, on_done)

    def _serial(self, fn: Callable[..., Any], args: list[tuple[Any, ...]],
                stage: StagePlan) -> list[tuple[Any, dict]]:
        outputs = []
        for i, a in enumerate(args):
            try:
                outputs.append(fn(*a))
            except Exception as exc:
                raise RunFailed(f"stage {stage.name!r} task {i} raised "
                                f"{type(exc).__name__}: {exc}") from exc
        return outputs


class ConstantMetering(Metering):
    """This host at a constant :data:`WATTS`, all of it dynamic (a modelled figure)."""

    label = MeterLabel("constant", "modelled")

    def __init__(self) -> None:
        self.host = host_key()
        self.host_info = {self.host: {"model": f"constant {WATTS} W"}}
        self._t0: float | None = None

    @classmethod
    def from_config(cls, config: RunConfig) -> ConstantMetering:
        return cls()

    def idle(self, seconds: float) -> dict[str, IdleBaseline]:
        return {self.host: IdleBaseline(0.0, "constant model: no idle power")}

    def start(self) -> None:
        self._t0 = time.monotonic()

    def stop(self) -> dict[str, WindowEnergy]:
        if self._t0 is None:
            return {}
        t0, self._t0 = self._t0, None
        t1 = time.monotonic()
        joules = WATTS * (t1 - t0)
        return {self.host: WindowEnergy(self.host, self.label, t0, t1, joules,
                                        {"board": joules})}


class NotAnExecutor:
    """What a broken plug-in might point at."""
