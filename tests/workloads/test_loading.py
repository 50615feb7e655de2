"""User workloads and pipelines by import path and entry point, and the one-line errors a
broken user object gets."""

from __future__ import annotations

import pickle
import textwrap
import uuid

import pytest

import workloads
from workloads import Pipeline, Workload, WorkloadError, run_serial

GOOD = '''
from workloads import Edge, Param, Pipeline, Stage, Workload
from workloads._base import split_even


def partition(tasks, size, seed, params):
    return [range(a, b) for a, b in split_even(int(size), tasks)]


def map(chunk):
    return sum(chunk)


def reduce(partials):
    return sum(partials)


def summary(result):
    return {"total": result}


WL = Workload("usersum", "sum 0..size-1", "numbers", 10, (), partition, map, reduce, summary)


def source(stage, tasks, size, seed, params):
    return partition(tasks, size, seed, params)


def squares(ctx, inputs):
    return [v * v * ctx.params["scale"] for v in ctx.source]


def add(ctx, inputs):
    return sum(sum(part) for part in inputs["squares"])


def total(outputs):
    return {"sum_of_squares": sum(outputs["add"])}


PIPE = Pipeline(
    name="userpipe", description="sum of squares", size_meaning="numbers", default_size=10,
    params=(Param("scale", int, 1, "multiplier"),),
    stages=(Stage("squares", squares, (), 3), Stage("add", add, (Edge("squares", "split"),), 2)),
    source=source, summary=total,
)


class Holder:
    PIPE = PIPE


NOT_A_WORKLOAD = 42
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """Write a module with a fresh name under a folder on sys.path; return its name."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(source: str) -> str:
        name = f"rjuser_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        return name

    return write


def test_pipeline_by_import_path_runs(user_module):
    mod = user_module(GOOD)
    pipeline = workloads.get_pipeline(f"{mod}:PIPE")
    assert isinstance(pipeline, Pipeline) and pipeline.name == "userpipe"
    expected = {"sum_of_squares": 2 * sum(v * v for v in range(12))}
    for tasks in (None, 1, {"squares": 5, "add": 3}):
        assert run_serial(pipeline, 12, tasks, 0, {"scale": 2}) == expected
    assert pickle.loads(pickle.dumps(pipeline)) == pipeline  # its module is importable
    assert workloads.get_pipeline(f"{mod}:Holder.PIPE") is pipeline


def test_workload_by_import_path_as_workload_and_as_pipeline(user_module):
    mod = user_module(GOOD)
    wl = workloads.get(f"{mod}:WL")
    assert isinstance(wl, Workload) and wl.name == "usersum"
    pipeline = workloads.get_pipeline(f"{mod}:WL")
    assert pipeline.workload is wl
    assert run_serial(pipeline, 10, 4, 0, {}) == {"total": 45}
    assert workloads.execute(f"{mod}:WL", size=10, tasks=3) == {"total": 45}


def test_a_pipeline_is_not_a_workload(user_module):
    mod = user_module(GOOD)
    with pytest.raises(WorkloadError, match=f"{mod}:PIPE is a pipeline, not a single-stage"):
        workloads.get(f"{mod}:PIPE")


BROKEN_WORKLOAD = GOOD + '''
import dataclasses
import types

NO_MAP = dataclasses.replace(WL, map=None)
DUCK = types.SimpleNamespace(name="duck", partition=partition, map=map, reduce=reduce,
                             summary=summary)
HALF_PIPE = types.SimpleNamespace(stages=(), summary=total)
'''


@pytest.mark.parametrize(
    ("attr", "message"),
    [
        ("NOT_A_WORKLOAD", "{mod}:NOT_A_WORKLOAD is not a workload: missing partition(), map(), "
                           "reduce(), summary()"),
        ("NO_MAP", "{mod}:NO_MAP is not a workload: missing map()"),
        ("DUCK", "{mod}:DUCK is not a workload: it is a SimpleNamespace; build one with "
                 "workloads.Workload(...)"),
        ("HALF_PIPE", "{mod}:HALF_PIPE is not a pipeline: missing stages, source()"),
        ("NOPE", "{mod} has no attribute NOPE"),
        ("Holder.NOPE", "{mod} has no attribute Holder.NOPE"),
    ],
)
def test_broken_user_objects_name_the_missing_part(user_module, attr, message):
    mod = user_module(BROKEN_WORKLOAD)
    with pytest.raises(WorkloadError) as err:
        workloads.get_pipeline(f"{mod}:{attr}")
    assert str(err.value).startswith(message.format(mod=mod))
    assert "\n" not in str(err.value)


def test_get_checks_workloads_the_same_way(user_module):
    mod = user_module(BROKEN_WORKLOAD)
    with pytest.raises(WorkloadError, match="is not a workload: missing map()"):
        workloads.get(f"{mod}:NO_MAP")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import rjuser_missing_dependency\n",
         "importing {mod} failed: No module named 'rjuser_missing_dependency'"),
        ("raise RuntimeError('boom')\n", "importing {mod} failed: RuntimeError: boom"),
        ("from workloads import Pipeline, Stage, Edge\n"
         "def f(ctx, inputs): pass\n"
         "P = Pipeline('bad', '', '', 1, (), (Stage('a', f, (Edge('b'),)),), f, f)\n",
         "importing {mod} failed: WorkloadError: pipeline 'bad', stage 'a': input stage 'b' "
         "does not exist"),
    ],
)
def test_modules_that_fail_to_import(user_module, source, message):
    mod = user_module(source)
    with pytest.raises(WorkloadError) as err:
        workloads.get_pipeline(f"{mod}:P")
    assert str(err.value).startswith(message.format(mod=mod))


@pytest.mark.parametrize("path", ["rjuser_nowhere:WL", "rjuser_nowhere.sub:WL"])
def test_missing_module(path):
    module = path.split(":")[0]
    with pytest.raises(WorkloadError, match=f"module {module} not found"):
        workloads.get_pipeline(path)
    with pytest.raises(WorkloadError, match=f"module {module} not found"):
        workloads.get(path)


def test_a_name_that_is_nothing_lists_the_known_ones():
    with pytest.raises(WorkloadError) as err:
        workloads.get_pipeline("nothing")
    assert "unknown workload or pipeline 'nothing'" in str(err.value)
    assert all(n in str(err.value) for n in workloads.pipeline_names() + workloads.names())


@pytest.fixture
def plugins(tmp_path, monkeypatch, user_module):
    """An installed distribution (a dist-info folder on sys.path) with entry points."""
    mod = user_module(GOOD)
    info = tmp_path / "rjuser_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rjuser-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[rayjoule.workloads]\nplugsum = {mod}:WL\nplugbad = {mod}:NOT_A_WORKLOAD\n\n"
        f"[rayjoule.pipelines]\nplugpipe = {mod}:PIPE\nbroken = {mod}:NOPE\n"
    )
    return mod


def test_entry_points(plugins):
    assert workloads.get("plugsum").name == "usersum"
    assert workloads.get_pipeline("plugsum").workload is workloads.get("plugsum")
    assert workloads.get_pipeline("plugpipe").name == "userpipe"
    with pytest.raises(WorkloadError, match="entry point rayjoule.workloads:plugbad is not a "
                                            "workload: missing partition()"):
        workloads.get("plugbad")
    with pytest.raises(WorkloadError) as err:
        workloads.get_pipeline("broken")
    message = str(err.value)
    assert message.startswith(f"entry point rayjoule.pipelines:broken ({plugins}:NOPE) failed "
                              "to load: AttributeError")
    assert "\n" not in message


def test_builtins_win_over_entry_points_and_keep_their_api():
    assert workloads.get("pi") is workloads.get("pi")
    assert workloads.get_pipeline("ml") is workloads.get_pipeline("ml")
    assert workloads.names() == ["pi", "mandelbrot", "stock", "airbnb", "primes", "sleep"]
