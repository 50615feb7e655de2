"""Export a stage's profiles in flexecutor's profiling layout, with energy as one more step.

flexecutor (CLOUDLAB-URV/flexecutor) keeps one JSON file per stage, written by
``DAGExecutor.profile`` through ``save_profiling_results`` (``flexecutor/utils/utils.py``):
top-level keys are ``str((cpu, memory, workers))`` and ``load_profiling_results`` turns
*every* top-level key back into a tuple with ``ast.literal_eval``; each holds, per step of
``FunctionTimes.profile_keys()`` (``read``, ``compute``, ``write``, ``cold_start``), a list
of repetitions, each a list with one value per worker. The thesis's fork of flexecutor
added its energy figures as further steps of the same shape; this export adds one,
``energy_j``. Nothing else may sit at the top level, so what the figures mean (meter name
and kind, framework, size, the split below, the overhead no task carries) is returned
apart, for a sidecar file.

Why a rayjoule task splits this way: rayjoule records per task the start and end of the
stage function and the CPU time it used (``TaskRecord``); the data store reads a task's
inputs before that window and writes its output after it, unrecorded, and a task beyond
the concurrency waits for a slot. Within the stage's window (the first task's start to
the last task's end, which is how rayjoule defines a stage's ``wall_s``) each task's time
therefore splits into

* ``read``  = task start − stage start: waiting for a slot, worker start-up, input fetch;
* ``compute`` = task end − task start: the stage function, as rayjoule timed it;
* ``write`` = stage end − task end: storing the output and waiting for the stage's last task;
* ``cold_start`` = 0: start-up is inside the stage's wall time already (``cold_start_s``
  is None in rayjoule's own profiles).

**Memory.** flexecutor's models key their fits on memory: ``AnaPerfModel`` (its default)
on ``cpu × memory × workers``, the Jolteon-derived ones on the vCPUs memory buys (Lambda's
rate); with memory 0 every setting would fall on one point. Where rayjoule set no memory,
the key carries ``num_cpus × 1769`` MB — the memory that buys those vCPUs at the rate
flexecutor's own schedulers (Jolteon, Caerus, Ditto) use to turn CPUs into memory — and the
sidecar lists those keys (``memory_from_cpus``), so importing the export reads their memory
as unset again.

So read + compute + write is the stage's stored wall time for every worker, and
flexecutor's reading (and ``--import-flexecutor``: the mean over workers) gives back
exactly the quantity rayjoule's models were fitted on. ``energy_j`` is each task's
attributed joules (its slot's share of idle power plus its CPU time's share of dynamic
power); the stage's share of the run's overhead (framework daemons, driver) belongs to no
task and goes to the sidecar per repetition, so Σ ``energy_j`` + overhead is the stage's
``total_j``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rayjoule.core.errors import ConfigError
from rayjoule.core.result import TaskRecord
from rayjoule.modelling.flexecutor import COLD_KEYS, ENERGY_STEP, ROUNDING_J
from rayjoule.modelling.flexecutor import STEPS as TIME_STEPS
from rayjoule.modelling.forms import MB_PER_VCPU
from rayjoule.runs.store import RunRecord, Store

STEPS = (*TIME_STEPS, COLD_KEYS[0], ENERGY_STEP)
SPLIT = ("read = task start - stage start (slot wait, worker start-up, input fetch); "
         "compute = task end - task start (the stage function); "
         "write = stage end - task end (output store, wait for the stage's last task); "
         "cold_start = 0 (inside the stage's wall time); energy_j = the task's attributed "
         "joules (static + dynamic), the stage's overhead share is in overhead_j")


@dataclass(frozen=True)
class FlexecutorExport:
    """One stage's profiles in flexecutor's layout (``data``) and what they mean (``meta``)."""

    workload: str
    stage: str
    framework: str
    size: float
    #: meter name and kind over the exported runs ("a+b" where they differ)
    meter: dict[str, str]
    #: ``"(cpu, memory, workers)"`` → step → repetitions → one value per worker
    data: dict[str, dict[str, list[list[float]]]]
    #: ``"(cpu, memory, workers)"`` → per repetition, the stage's overhead share (J)
    overhead_j: dict[str, list[float]] = field(default_factory=dict)
    #: ``"(cpu, memory, workers)"`` → per repetition, the rayjoule run it came from
    run_ids: dict[str, list[str]] = field(default_factory=dict)
    #: the keys whose memory is ``num_cpus × 1769`` because rayjoule set none
    memory_from_cpus: tuple[str, ...] = ()

    @property
    def repetitions(self) -> int:
        return sum(len(entry["compute"]) for entry in self.data.values())

    def meta(self) -> dict[str, Any]:
        """The sidecar (``OUT.json.meta.json``): where the figures came from and what they mean."""
        return {"format": "flexecutor profiling (DAGExecutor.profile)", "source": "rayjoule",
                "workload": self.workload, "stage": self.stage, "framework": self.framework,
                "size": self.size, "meter": dict(self.meter), "energy_step": ENERGY_STEP,
                "units": {"read": "s", "compute": "s", "write": "s", "cold_start": "s",
                          "energy_j": "J"},
                "split": SPLIT, "overhead_j": self.overhead_j, "run_ids": self.run_ids,
                "memory_from_cpus": list(self.memory_from_cpus),
                "memory": f"the keys in memory_from_cpus carry num_cpus x {MB_PER_VCPU:g} MB "
                          "(flexecutor's schedulers' vCPU-to-memory rate): rayjoule set no "
                          "memory there"}


@dataclass(frozen=True)
class _Observed:
    """One repetition of one stage: its settings, size, tasks and overhead share."""

    run_id: str
    size: float
    key: str
    tasks: list[TaskRecord]
    overhead_j: float
    meter: tuple[str, str] | None
    #: whether the key's memory is num_cpus × 1769 because the run set none
    memory_from_cpus: bool = False


def export_flexecutor(store: Store, workload: str, stage: str | None = None,
                      framework: str | None = None, params: Mapping[str, Any] | None = None,
                      size: float | None = None) -> FlexecutorExport:
    """The store's profiles of ``workload``'s ``stage`` at one size, in flexecutor's layout.

    ``stage`` may be left out when the workload has one; ``size`` defaults to the size
    with the most repetitions (the profiling grid's). Raises ConfigError (one line) when
    there is nothing to export: no profiling runs, only imported ones (they have no
    tasks), several frameworks or parameter sets without a choice, an unknown stage or size.
    """
    records = _records(store, workload, framework, params)
    observed = [o for r in records for o in _observed(store, r)]
    stages = sorted({name for name, _ in observed})
    if stage is None:
        if len(stages) > 1:
            raise ConfigError(f"{workload!r} has stages {', '.join(stages)}; pick one "
                              "with --stage")
        stage = stages[0]
    if stage not in stages:
        raise ConfigError(f"{workload!r} has no profiled stage {stage!r} (its stages: "
                          f"{', '.join(stages)})")
    mine = [o for name, o in observed if name == stage]
    counts: dict[float, int] = {}
    for o in mine:
        counts[o.size] = counts.get(o.size, 0) + 1
    if size is None:
        size = max(sorted(counts), key=lambda s: counts[s])
    elif float(size) not in counts:
        raise ConfigError(f"stage {stage!r} of {workload!r} was not profiled at size "
                          f"{size:g} (profiled: {', '.join(f'{s:g}' for s in sorted(counts))})")
    mine = sorted((o for o in mine if o.size == float(size)), key=lambda o: _key_order(o.key))
    data: dict[str, dict[str, list[list[float]]]] = {}
    overhead: dict[str, list[float]] = {}
    run_ids: dict[str, list[str]] = {}
    for o in mine:
        entry = data.setdefault(o.key, {s: [] for s in STEPS})
        for step, values in _split(o.tasks).items():
            entry[step].append(values)
        overhead.setdefault(o.key, []).append(o.overhead_j)
        run_ids.setdefault(o.key, []).append(o.run_id)
    meters = sorted({o.meter for o in mine if o.meter})
    meter = {"name": "+".join(sorted({m for m, _ in meters})) or "none",
             "kind": "+".join(sorted({k for _, k in meters})) or "none"}
    derived = tuple(sorted({o.key for o in mine if o.memory_from_cpus}, key=_key_order))
    return FlexecutorExport(workload, stage, records[0].framework, float(size), meter, data,
                            overhead, run_ids, derived)


def _records(store: Store, workload: str, framework: str | None,
             params: Mapping[str, Any] | None) -> list[RunRecord]:
    """The finished profiling runs rayjoule itself ran, of one framework and parameter set."""
    found = [r for r in store.records(workload=workload, status="ok")
             if r.config.get("profile") and r.result is not None]
    if not found:
        raise ConfigError(f"no profiling runs of {workload!r} in {store.path}; run python -m "
                          f"rayjoule.profile --workload {workload} first")
    own = [r for r in found if r.config.get("source", "rayjoule") == "rayjoule"]
    if not own:
        raise ConfigError(f"the profiles of {workload!r} in {store.path} were all imported "
                          "(they keep no per-task records to export)")
    if framework is not None:
        own = [r for r in own if r.framework == framework]
        if not own:
            raise ConfigError(f"no profiling runs of {workload!r} on {framework} in "
                              f"{store.path}")
    frameworks = sorted({r.framework for r in own})
    if len(frameworks) > 1:
        raise ConfigError(f"the store holds profiles of {workload!r} on several frameworks "
                          f"({', '.join(frameworks)}); pick one with --framework")
    if params is not None:
        own = [r for r in own if dict(r.config.get("params") or {}) == dict(params)]
        if not own:
            raise ConfigError(f"no profiling runs of {workload!r} with those --param values")
    sets = sorted({repr(sorted((r.config.get("params") or {}).items())) for r in own})
    if len(sets) > 1:
        raise ConfigError(f"the store holds profiles of {workload!r} with several workload "
                          "parameter sets; pick one with --param")
    return own


def _observed(store: Store, record: RunRecord) -> list[tuple[str, _Observed]]:
    """(stage, repetition) pairs of one run; a repeat stored inside its combined run counts
    once (read from the combined row, whose ``repeats`` keep their tasks)."""
    if record.parent_id is not None:
        parent = store.record(record.parent_id)
        if parent is not None and parent.result and parent.result.get("repeats"):
            return []
    results = record.result.get("repeats") if record.result else None
    out = []
    for i, result in enumerate(results or [record.result]):
        if results:
            tasks = [TaskRecord.from_dict(dict(t)) for t in result.get("tasks") or []]
        else:
            tasks = store.tasks(record.run_id)
        meter = result.get("meter") or {}
        label = (str(meter["name"]), str(meter["kind"])) if meter.get("name") else None
        size = _size(record.config.get("size"))
        run_id = record.run_id if not results else f"{record.run_id}#{i}"
        for st in result.get("stages") or []:
            name = str(st["name"])
            mine = sorted((t for t in tasks if t.stage == name), key=lambda t: t.task_id)
            if not mine:
                continue
            memory = st.get("memory_mb", record.config.get("memory_mb"))
            cpus = float(st["num_cpus"])
            mb = cpus * MB_PER_VCPU if memory is None else float(memory)  # module docstring
            key = f"({_compact(cpus)}, {_compact(mb)}, {int(st['tasks'])})"
            overhead = float((st.get("energy") or {}).get("overhead_j") or 0.0)
            # total − tasks leaves float residue (e.g. -5e-20) where the tasks carry it all
            overhead = 0.0 if abs(overhead) < ROUNDING_J else overhead
            out.append((name, _Observed(run_id, size, key, mine, overhead, label,
                                        memory is None)))
    return out


def _split(tasks: list[TaskRecord]) -> dict[str, list[float]]:
    """Per step, one value per task (module docstring: why this split)."""
    start = min(t.start for t in tasks)
    end = max(t.end for t in tasks)
    return {"read": [t.start - start for t in tasks],
            "compute": [t.end - t.start for t in tasks],
            "write": [end - t.end for t in tasks],
            "cold_start": [0.0 for _ in tasks],
            "energy_j": [t.energy_j for t in tasks]}


def _key_order(key: str) -> tuple[float, ...]:
    return tuple(float(v) for v in key.strip("()").split(","))


def _size(value: Any) -> float:
    """A run's size as a number; a workload's default size (None) is one size, called 1.0."""
    if value is None:
        return 1.0
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"a profiling run's size {value!r} is not a number")
    return number


def _compact(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)
