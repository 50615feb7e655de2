"""The pipeline contract: routes, DAG validation, per-stage settings, the serial reference,
and single-stage workloads seen as one-stage pipelines."""

from __future__ import annotations

import dataclasses
import json
import pickle

import pytest

import workloads
from workloads import (
    DataStore,
    Edge,
    Pipeline,
    Stage,
    TaskContext,
    WorkloadError,
    as_pipeline,
    route_inputs,
    run_serial,
    select_bucket,
)
from workloads._base import Param, split_even

# -- a toy diamond: gen -> (bucket) parity -> (all) total;  gen -> (split) count ------------


def _source(stage, tasks, size, seed, params):
    return [range(a, b) for a, b in split_even(int(size), tasks)]


def _gen(ctx: TaskContext, inputs):
    """Numbers of this task's range, dealt into buckets by value (a shuffle by key)."""
    buckets = [[] for _ in range(ctx.fanout)]
    for value in ctx.source:
        buckets[value % ctx.fanout].append(value * ctx.params["scale"])
    return buckets


def _parity(ctx: TaskContext, inputs):
    values = [v for bucket in inputs["gen"] for v in bucket]
    return {"index": ctx.index, "tasks": ctx.tasks, "sum": sum(values), "n": len(values)}


def _total(ctx: TaskContext, inputs):
    assert [p["index"] for p in inputs["parity"]] == list(range(len(inputs["parity"])))
    return sum(p["sum"] for p in inputs["parity"])


def _count(ctx: TaskContext, inputs):
    return sum(len(bucket) for out in inputs["gen"] for bucket in out)


def _summary(outputs):
    return {"total": sum(outputs["total"]), "count": sum(outputs["count"])}


def toy(**changes) -> Pipeline:
    fields = dict(
        name="toy",
        description="a diamond",
        size_meaning="numbers",
        default_size=10,
        params=(Param("scale", int, 1, "multiplier", minimum=1),),
        stages=(
            Stage("gen", _gen, (), 2),
            Stage("parity", _parity, (Edge("gen", "bucket"),), 3),
            Stage("total", _total, (Edge("parity", "all"),), 1, 1),
            Stage("count", _count, (Edge("gen", "split"),), 2),
        ),
        source=_source,
        summary=_summary,
    )
    fields.update(changes)
    return Pipeline(**fields)


# -- routes ------------------------------------------------------------------------------


def test_route_all_broadcasts_and_split_shares_contiguously():
    upstream = ["u0", "u1", "u2", "u3", "u4"]
    assert route_inputs(Edge("a", "all"), upstream, 1, 3) == upstream
    shares = [route_inputs(Edge("a", "split"), upstream, i, 3) for i in range(3)]
    assert shares == [["u0", "u1"], ["u2", "u3"], ["u4"]]
    # more tasks than outputs: the trailing tasks get nothing, nobody gets twice
    assert [route_inputs(Edge("a", "split"), ["x"], i, 3) for i in range(3)] == [["x"], [], []]


def test_route_split_and_all_work_on_opaque_handles():
    handles = [object() for _ in range(4)]
    assert route_inputs(Edge("a", "split"), handles, 1, 2) == handles[2:]
    assert route_inputs(Edge("a", "all"), handles, 0, 2) == handles


def test_route_bucket_takes_bucket_i_of_every_output():
    upstream = [("a0", "a1", "a2"), ["b0", "b1", "b2"]]
    assert route_inputs(Edge("a", "bucket"), upstream, 2, 3) == ["a2", "b2"]
    assert select_bucket(upstream[1], 1, 3) == "b1"


@pytest.mark.parametrize("output", [("only", "two"), "abc", {"0": 1}])
def test_route_bucket_rejects_wrong_bucket_counts(output):
    with pytest.raises(WorkloadError, match="bucket"):
        route_inputs(Edge("a", "bucket"), [output], 0, 3)


# -- DAG validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ((Stage("a", _gen, (Edge("b"),)), Stage("b", _gen, (Edge("a"),))),
         "stage 'a': the stages a -> b -> a form a cycle"),
        ((Stage("a", _gen, (Edge("a"),)),), "stage 'a': the stages a -> a form a cycle"),
        ((Stage("in", _gen), Stage("c", _gen, (Edge("b"),)), Stage("a", _gen, (Edge("c"),)),
          Stage("b", _gen, (Edge("a"), Edge("in")))),
         "stage 'c': the stages c -> b -> a -> c form a cycle"),
        ((Stage("a", _gen, (Edge("b"),)), Stage("b", _gen, (Edge("c"),)),
          Stage("c", _gen, (Edge("b"),))),
         "stage 'b': the stages b -> c -> b form a cycle"),  # a waits, outside it
        ((Stage("a", _gen), Stage("b", _gen, (Edge("nope"),))),
         "stage 'b': input stage 'nope' does not exist"),
        ((Stage("a", _gen), Stage("a", _gen)), "stage 'a': duplicate stage name"),
        ((Stage("a", _gen), Stage("b", _gen, (Edge("a", "scatter"),))),
         "stage 'b': route 'scatter' for input 'a' must be one of all, split, bucket"),
        ((Stage("a", _gen), Stage("b", _gen, (Edge("a"), Edge("a", "split")))),
         "stage 'b': reads the same stage twice"),
        ((Stage("a", _gen, (), 0),), "stage 'a': default_tasks must be an int >= 1"),
        ((Stage("a", _gen, (), 2, 1),), "stage 'a': max_tasks must be an int >= default_tasks"),
        ((Stage("a b", _gen),), "stage 'a b': a stage name must be"),
        ((Stage("a", "not callable"),), "stage 'a': run is not callable"),
        ((), "has no stages"),
    ],
)
def test_malformed_dags_are_rejected_naming_pipeline_and_stage(stages, message):
    with pytest.raises(WorkloadError) as err:
        toy(stages=stages)
    assert message in str(err.value)
    assert "pipeline 'toy'" in str(err.value)


def test_order_is_topological_and_stable():
    p = toy()
    assert [s.name for s in p.order()] == ["gen", "parity", "total", "count"]
    shuffled = toy(stages=tuple(reversed(p.stages)))  # consumers defined before producers
    assert [s.name for s in shuffled.order()] == ["gen", "count", "parity", "total"]


def test_sinks_fanout_and_stage_lookup():
    p = toy()
    assert p.sinks() == ["total", "count"]
    assert p.fanout("gen", {"gen": 2, "parity": 5, "total": 1, "count": 2}) == 5
    assert p.fanout("parity", {"gen": 2, "parity": 5, "total": 1, "count": 2}) == 1
    assert p.stage("count").default_tasks == 2
    with pytest.raises(WorkloadError, match=r"unknown stage 'x' in pipeline 'toy' "
                                            r"\(stages: gen, parity, total, count\)"):
        p.stage("x")


def test_two_bucket_readers_need_the_same_task_count():
    p = toy(stages=toy().stages + (Stage("again", _parity, (Edge("gen", "bucket"),)),))
    assert p.validate(None, 2)[2]["again"] == 2
    with pytest.raises(WorkloadError, match="parity, again bucket-read stage 'gen'"):
        p.validate(None, {"parity": 2, "again": 3})


# -- per-stage settings --------------------------------------------------------------------


def test_validate_fills_defaults_and_converts():
    size, params, tasks = toy().validate()
    assert (size, params, tasks) == (10, {"scale": 1}, {"gen": 2, "parity": 3, "total": 1,
                                                       "count": 2})
    size, params, tasks = toy().validate("7", {"parity": "4"}, {"scale": "3"}, seed="2")
    assert (size, params, tasks["parity"], tasks["gen"]) == (7, {"scale": 3}, 4, 2)


def test_int_tasks_set_every_stage_but_respect_max_tasks():
    assert toy().validate(None, 5)[2] == {"gen": 5, "parity": 5, "total": 1, "count": 5}


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ({"x": 2}, "unknown stage 'x' in tasks for pipeline 'toy' "
                   "(stages: gen, parity, total, count)"),
        ({"total": 2}, "tasks for stage 'total' of pipeline 'toy' must be <= 1, not 2"),
        ({"gen": 0}, "tasks for stage 'gen' must be >= 1"),
        ({"gen": 1.5}, "tasks for stage 'gen' must be int"),
        ({"gen": True}, "tasks for stage 'gen' must be int"),
        (0, "tasks must be >= 1"),
        ("many", "tasks must be int"),
    ],
)
def test_bad_tasks_are_rejected(tasks, message):
    with pytest.raises(WorkloadError) as err:
        toy().validate(None, tasks)
    assert message in str(err.value)


def test_per_stage_floats_for_resources():
    p = toy()
    assert p.validate_per_stage("num_cpus", None) == dict.fromkeys(
        ["gen", "parity", "total", "count"], 1.0)
    assert p.validate_per_stage("num_cpus", "0.5") == dict.fromkeys(
        ["gen", "parity", "total", "count"], 0.5)
    assert p.validate_per_stage("num_cpus", {"gen": 2}, default=0.25) == {
        "gen": 2.0, "parity": 0.25, "total": 0.25, "count": 0.25}
    with pytest.raises(WorkloadError, match="unknown stage 'x' in num_cpus for pipeline 'toy'"):
        p.validate_per_stage("num_cpus", {"x": 1})
    with pytest.raises(WorkloadError, match="num_cpus for stage 'gen' must be > 0"):
        p.validate_per_stage("num_cpus", {"gen": 0})
    with pytest.raises(WorkloadError, match="num_cpus must be > 0"):
        p.validate_per_stage("num_cpus", -1)


def test_unknown_param_and_bad_size():
    with pytest.raises(WorkloadError, match="unknown parameter 'nope' for pipeline 'toy'"):
        toy().validate(None, None, {"nope": 1})
    with pytest.raises(WorkloadError, match="size of 'toy' must be >= 1"):
        toy().validate(0)


# -- the serial reference --------------------------------------------------------------------


@pytest.mark.parametrize(
    "tasks", [None, 1, 4, {"gen": 1, "parity": 5}, {"gen": 7, "parity": 1, "count": 3}]
)
def test_run_serial_routes_every_item_exactly_once(tasks):
    expected = {"total": 3 * sum(range(23)), "count": 23}
    assert run_serial(toy(), 23, tasks, 0, {"scale": 3}) == expected
    assert run_serial(toy(), 23, tasks, 0, {"scale": 3}, DataStore.from_uri("memory://")) \
        == expected


def test_run_serial_with_a_store_stores_buckets_separately_and_cleans_up(tmp_path):
    store = DataStore.from_uri(tmp_path)
    seen: list[str] = []
    real_put = store.put

    def spy(key, obj):
        seen.append(key)
        return real_put(key, obj)

    store.put = spy  # type: ignore[method-assign]
    assert run_serial(toy(), 10, {"gen": 2, "parity": 3}, 0, {}, store) == {
        "total": 45, "count": 10}
    gen_keys = [k for k in seen if "/gen/" in k]
    # gen is read whole (split, by count) and by bucket (parity): both are stored
    assert sum(k.endswith("/gen/00000.pkl") for k in gen_keys) == 1
    assert sum("/gen/00000/b" in k for k in gen_keys) == 3
    assert store.list_inputs() == []  # the run's prefix is deleted


def test_stage_that_ignores_fanout_is_caught():
    bad = toy(stages=(Stage("gen", _parity_ignoring_fanout),
                      Stage("parity", _parity, (Edge("gen", "bucket"),), 3),
                      Stage("total", _total, (Edge("parity"),), 1, 1)),
              summary=lambda outputs: {})
    with pytest.raises(WorkloadError, match="holds 1 buckets, but the reading stage runs 3"):
        run_serial(bad, 5, None, 0, {})


def _parity_ignoring_fanout(ctx, inputs):
    return [list(ctx.source)]


def test_source_must_give_one_descriptor_per_task():
    with pytest.raises(WorkloadError, match="source gave 1 descriptors for the 2 tasks"):
        run_serial(toy(source=lambda *args: [range(3)]), 5, {"gen": 2}, 0, {})


# -- workloads as one-stage pipelines -----------------------------------------------------------

SMALL = {
    "pi": (300_000, {}),
    "mandelbrot": (24, {"max_iter": 30}),
    "stock": (200, {"days": 30}),
    "airbnb": (50, {}),
    "primes": (10_000, {}),
    "sleep": (0.0, {}),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_wrapped_workload_matches_execute(name):
    size, params = SMALL[name]
    pipeline = workloads.get_pipeline(name)
    assert [s.name for s in pipeline.stages] == ["map"] and pipeline.workload is not None
    expected = workloads.execute(name, size=size, tasks=3, **params)
    assert run_serial(pipeline, size, {"map": 3}, 0, params) == expected
    assert run_serial(pipeline, size, 2, 0, params, DataStore.from_uri("memory://")) == expected


@pytest.mark.parametrize("name", sorted(SMALL))
def test_wrapped_workload_pickles_and_validates_like_the_workload(name):
    wl = workloads.get(name)
    pipeline = workloads.get_pipeline(name)
    assert workloads.get_pipeline(name) is pipeline
    copy = pickle.loads(pickle.dumps(pipeline))
    assert copy == pipeline
    assert copy.stages[0].run == pipeline.stages[0].run
    size, params = SMALL[name]
    assert pipeline.validate(size, 2, params) == (*wl.validate(size, 2, params), {"map": 2})
    assert (pipeline.name, pipeline.params, pipeline.default_size) == (
        wl.name, wl.params, wl.default_size)


def test_wrapped_workload_reports_the_workloads_own_errors():
    with pytest.raises(WorkloadError, match="unknown parameter 'bogus' for workload 'mandelbrot'"):
        workloads.get_pipeline("mandelbrot").validate(None, 1, {"bogus": 1})


def test_as_pipeline_of_a_modified_workload():
    wl = dataclasses.replace(workloads.get("primes"), name="primes2")
    pipeline = as_pipeline(wl)
    assert pipeline.name == "primes2"
    assert run_serial(pipeline, 100, 4, 0, {}) == {"limit": 100, "count": 25, "max_prime": 97}


# -- built-ins ---------------------------------------------------------------------------------


def test_builtin_pipelines_are_registered_and_pickle_by_reference():
    assert workloads.pipeline_names() == ["ml", "wordcount", "video"]
    for name in workloads.pipeline_names():
        pipeline = workloads.get_pipeline(name)
        assert pipeline.name == name and pipeline.description and pipeline.size_meaning
        assert len(pipeline.stages) >= 3
        assert pickle.loads(pickle.dumps(pipeline)) == pipeline
        for stage in pipeline.stages:
            assert pickle.loads(pickle.dumps(stage.run)) is stage.run
            assert len(pickle.dumps(stage.run)) < 100  # a reference, not code
            assert stage.description
        json.dumps([p.default for p in pipeline.params])


def test_get_points_pipelines_to_get_pipeline():
    with pytest.raises(WorkloadError, match="use workloads.get_pipeline"):
        workloads.get("ml")
    with pytest.raises(WorkloadError,
                       match=r"unknown workload or pipeline 'nope' \(known: ml, wordcount"):
        workloads.get_pipeline("nope")
