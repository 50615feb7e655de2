"""Run one task of a stage and record where, when and how much CPU it took.

This is the only code that runs inside workers, on every framework, so the per-task
records (host, pid, start, end, CPU time, stage) mean the same thing everywhere. CPU time
is the worker process's own (``time.process_time``), which attribution charges at the
host's dynamic joules per busy CPU-second.

Native and Lithops hand data between stages through a ``workloads.DataStore``
(:func:`run_stored_task`); Ray passes object references (:mod:`.ray_executor`).
"""

from __future__ import annotations

import os
import time
from typing import Any

from rayjoule.cluster.hosts import host_key
from rayjoule.frameworks.job import StagePlan


def run_task(pipeline: Any, stage: StagePlan, ctx: Any, inputs: dict[str, list[Any]],
             node_id: str = "") -> tuple[Any, dict[str, Any]]:
    """Apply the stage's function to one task's inputs; return (output, record dict)."""
    start = time.time()
    cpu0 = time.process_time()
    output = pipeline.stage(stage.name).run(ctx, inputs)
    cpu_s = time.process_time() - cpu0
    end = time.time()
    if stage.bucketed:
        from workloads import select_bucket

        select_bucket(output, 0, stage.fanout)  # a wrong bucket count fails here, named
    host = host_key()
    record = {"task_id": ctx.index, "node_id": node_id or host, "host": host,
              "pid": os.getpid(), "start": start, "end": end, "cpu_s": cpu_s,
              "stage": stage.name, "slot_cpus": stage.num_cpus}
    return output, record


def run_stored_task(pipeline: Any, stage: StagePlan, ctx: Any,
                    handles: dict[str, tuple[str, list[str]]], store: Any,
                    run_prefix: str) -> tuple[Any, dict[str, Any]]:
    """A task whose inputs and output go through the data store.

    ``handles`` maps each upstream stage to (route, keys): bucket keys for a shuffle,
    whole-output keys otherwise. A sink's output returns to the driver itself; every
    other output is stored (whole and/or bucket by bucket) and its keys returned.
    """
    from workloads import output_key

    inputs = {up: [store.get(key) for key in keys] for up, (_, keys) in handles.items()}
    output, record = run_task(pipeline, stage, ctx, inputs)
    if stage.sink and not stage.read_as:
        return output, record
    whole = any(r != "bucket" for r in stage.read_as) or stage.sink
    key = store.put(output_key(run_prefix, stage.name, ctx.index), output) if whole else None
    buckets = ([store.put(output_key(run_prefix, stage.name, ctx.index, b), part)
                for b, part in enumerate(output)] if stage.bucketed else [])
    return (key, buckets), record


def stored_inputs(stage: StagePlan, index: int,
                  upstream: dict[str, list[tuple[str | None, list[str]]]]
                  ) -> dict[str, tuple[str, list[str]]]:
    """The store keys task ``index`` of ``stage`` reads, from its upstream stages' handles."""
    from rayjoule.frameworks.job import route

    handles = {}
    for up, route_name in stage.inputs:
        if route_name == "bucket":
            keys = [h[1][index] for h in upstream[up]]
        else:
            keys = [h[0] for h in route(upstream[up], route_name, index, stage.tasks)]
        handles[up] = (route_name, keys)
    return handles


def sink_outputs(store: Any, stage: StagePlan, outputs: list[Any]) -> list[Any]:
    """A sink's outputs as the summary wants them (fetched when they were also stored)."""
    if not stage.read_as:
        return outputs
    return [store.get(handle[0]) for handle in outputs]
