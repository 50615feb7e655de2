"""The reference run: every task of every stage in this process, in order.

Apart from :mod:`workloads._pipeline` because it is an executor of sorts (the one the others'
results are checked against), not part of what a pipeline is.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from workloads._base import ParamValue, Size, WorkloadError
from workloads._pipeline import Pipeline, Stage, TaskContext
from workloads._routes import output_key, route_inputs, select_bucket

if TYPE_CHECKING:
    from workloads._datastore import DataStore


def run_serial(
    pipeline: Pipeline,
    size: Any,
    tasks_by_stage: int | Mapping[str, Any] | None,
    seed: int,
    params: Mapping[str, Any] | None,
    store: DataStore | None = None,
) -> dict[str, Any]:
    """Run every task of every stage in this process, in order: the reference result.

    With a ``store``, every output is ``put`` under a fresh run prefix and every input is
    ``get`` back (bucket-read outputs bucket by bucket, as a shuffle would), then the prefix
    is deleted; this exercises the store exactly as a distributed executor would.
    """
    size, values, tasks = pipeline.validate(size, tasks_by_stage, params, seed)
    run = f"serial-{uuid.uuid4().hex[:12]}"
    outputs: dict[str, list[Any]] = {}
    try:
        for stage in pipeline.order():
            outputs[stage.name] = _run_stage(pipeline, stage, size, values, tasks, seed,
                                             outputs, store, run)
        sinks = {name: _fetch(store, outputs[name]) for name in pipeline.sinks()}
    finally:
        if store is not None:
            store.delete_prefix(run)
    return pipeline.summary(sinks)


def _run_stage(pipeline: Pipeline, stage: Stage, size: Size, params: dict[str, ParamValue],
               tasks: dict[str, int], seed: int, outputs: dict[str, list[Any]],
               store: DataStore | None, run: str) -> list[Any]:
    """All tasks of one stage; returns outputs, or store handles when a store is used."""
    n = tasks[stage.name]
    fanout = pipeline.fanout(stage.name, tasks)
    sources: list[Any] = [None] * n
    if not stage.inputs:
        sources = list(pipeline.source(stage.name, n, size, seed, params))
        if len(sources) != n:
            raise WorkloadError(
                f"pipeline {pipeline.name!r}: source gave {len(sources)} descriptors for "
                f"the {n} tasks of stage {stage.name!r}"
            )
    readers = [e.route for _, e in pipeline.consumers(stage.name)]
    bucketed = "bucket" in readers
    whole = not readers or any(route != "bucket" for route in readers)
    results = []
    for i in range(n):
        inputs = {}
        for edge in stage.inputs:
            if store is not None and edge.route == "bucket":
                keys = [handle[1][i] for handle in outputs[edge.stage]]
                inputs[edge.stage] = [store.get(key) for key in keys]
            else:
                routed = route_inputs(edge, outputs[edge.stage], i, n)
                inputs[edge.stage] = _fetch(store, routed)
        ctx = TaskContext(pipeline.name, stage.name, i, n, seed, size, dict(params), fanout,
                          sources[i])
        output = stage.run(ctx, inputs)
        if bucketed:
            select_bucket(output, 0, fanout)  # checks the bucket count
        results.append(_keep(store, run, stage.name, i, output, whole, bucketed))
    return results


def _keep(store: DataStore | None, run: str, stage: str, index: int, output: Any,
          whole: bool, bucketed: bool) -> Any:
    """Without a store, the output itself; with one, ``(whole key, bucket keys)``.

    A shuffle's reader needs only its own bucket, so bucket-read outputs are stored bucket by
    bucket (and whole only when some reader or the summary wants all of it).
    """
    if store is None:
        return output
    key = store.put(output_key(run, stage, index), output) if whole else None
    buckets = [store.put(output_key(run, stage, index, b), part)
               for b, part in enumerate(output)] if bucketed else []
    return key, buckets


def _fetch(store: DataStore | None, handles: list[Any]) -> list[Any]:
    """Outputs back from their handles (identity without a store)."""
    if store is None:
        return list(handles)
    return [store.get(whole) for whole, _ in handles]
