"""The built-in pipelines: the same summary for any per-stage parallelism and any data store,
results checked against independent computations, and their parameter checks."""

from __future__ import annotations

import json
import math
import multiprocessing
import string
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import pytest

import workloads
from workloads import (
    DataStore,
    TaskContext,
    WorkloadError,
    route_inputs,
    run_serial,
    select_bucket,
)
from workloads import wordcount as wc

SMALL = {
    "ml": (1_500, {"n_models": 3, "trees": 2, "components": 12}),
    "wordcount": (40_000, {"vocabulary": 500, "top_k": 5}),
    "video": (5, {"frames": 20, "chunk": 6, "resolution": 32}),
}


def task_settings(name: str) -> list:
    """Defaults, all-1, all-3, and a different count on every stage."""
    stages = workloads.get_pipeline(name).stages
    mixed = {s.name: 1 + (i * 2) % 5 for i, s in enumerate(stages) if s.max_tasks is None}
    return [None, 1, 3, mixed]


@pytest.fixture(scope="module")
def reference() -> dict[str, dict]:
    """Each small pipeline's summary, serial, one task per stage, no store."""
    return {name: run_serial(workloads.get_pipeline(name), size, 1, 0, params)
            for name, (size, params) in SMALL.items()}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_summary_is_flat_json_and_sensible(name, reference):
    summary = reference[name]
    assert json.loads(json.dumps(summary)) == summary
    assert all(isinstance(v, int | float | str) for v in summary.values())
    if name == "ml":
        assert summary["test_samples"] > 300 and summary["accuracy"] > 0.5
        assert summary["n_models"] == 3 and summary["kept"] == "0,1,2"
    elif name == "wordcount":
        assert summary["words"] == 40_000 and 0 < summary["distinct"] <= 500
    else:
        assert summary["keyframes"] == 5 * math.ceil(20 / 6)
        assert summary["accuracy"] >= 0.9
        assert summary["squares"] + summary["disks"] + summary["crosses"] == 20


@pytest.mark.parametrize("name", sorted(SMALL))
def test_any_parallelism_gives_the_same_summary(name, reference):
    size, params = SMALL[name]
    for tasks in task_settings(name):
        assert run_serial(workloads.get_pipeline(name), size, tasks, 0, params) == \
            reference[name], tasks


@pytest.mark.parametrize("name", sorted(SMALL))
def test_memory_and_folder_stores_give_the_same_summary(name, reference, tmp_path):
    size, params = SMALL[name]
    folder = DataStore.from_uri(tmp_path)
    for tasks in task_settings(name):
        for store in (DataStore.from_uri("memory://"), folder):
            assert run_serial(workloads.get_pipeline(name), size, tasks, 0, params, store) == \
                reference[name], (tasks, store.kind)
    assert folder.list_inputs() == []


@pytest.mark.parametrize("name", sorted(SMALL))
def test_s3_store_gives_the_same_summary(name, reference, s3):
    size, params = SMALL[name]
    store = DataStore.from_uri(s3.uri(f"pipelines/{name}"))
    for tasks in task_settings(name)[2:]:
        assert run_serial(workloads.get_pipeline(name), size, tasks, 0, params, store) == \
            reference[name], tasks
    assert store.list_inputs() == []


@pytest.mark.parametrize("name", sorted(SMALL))
def test_seed_changes_the_data(name, reference):
    size, params = SMALL[name]
    assert run_serial(workloads.get_pipeline(name), size, 2, 1, params) != reference[name]


# -- a process-pool executor: stages, contexts and outputs cross process boundaries ------------


def _run_task(stage_run, ctx: TaskContext, store: DataStore, keys: dict, out_key: str) -> str:
    """A worker: fetch the routed inputs (bucket routes select in here), run, store."""
    inputs = {}
    for stage, (route, ks) in keys.items():
        outputs = [store.get(k) for k in ks]
        inputs[stage] = ([select_bucket(o, ctx.index, ctx.tasks) for o in outputs]
                         if route == "bucket" else outputs)
    return store.put(out_key, stage_run(ctx, inputs))


def test_stages_run_in_spawned_processes_through_a_folder_store(tmp_path, reference):
    """What a distributed executor does: everything it ships must pickle by reference."""
    store = DataStore.from_uri(tmp_path)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        for name, (size, params) in SMALL.items():
            pipeline = workloads.get_pipeline(name)
            size, values, tasks = pipeline.validate(size, 2, params)
            keys: dict[str, list[str]] = {}
            for stage in pipeline.order():
                n = tasks[stage.name]
                sources = (pipeline.source(stage.name, n, size, 0, values) if not stage.inputs
                           else [None] * n)
                futures = []
                for i in range(n):
                    routed = {e.stage: (e.route, keys[e.stage] if e.route == "bucket"
                                        else route_inputs(e, keys[e.stage], i, n))
                              for e in stage.inputs}
                    ctx = TaskContext(name, stage.name, i, n, 0, size, values,
                                      pipeline.fanout(stage.name, tasks), sources[i])
                    futures.append(pool.submit(_run_task, stage.run, ctx, store, routed,
                                               f"{name}/{stage.name}/{i}.pkl"))
                keys[stage.name] = [f.result() for f in futures]
            outputs = {s: [store.get(k) for k in keys[s]] for s in pipeline.sinks()}
            assert pipeline.summary(outputs) == reference[name]


# -- wordcount ---------------------------------------------------------------------------------


def _plain_count(text: bytes) -> Counter:
    """Word counts written independently of wordcount.count_words."""
    out: Counter = Counter()
    for token in text.decode("utf-8").split():
        token = token.lower().strip(string.punctuation + "“”‘’«»…")
        if token:
            out[token] += 1
    return out


def _summary_of(counts: Counter, k: int) -> tuple:
    top = sorted(counts.items(), key=lambda wn: (-wn[1], wn[0]))[:k]
    return sum(counts.values()), len(counts), " ".join(f"{w}:{n}" for w, n in top)


def test_wordcount_synthetic_matches_a_plain_count():
    size, params = 40_000, {"vocabulary": 500, "zipf": 1.1}
    blocks = math.ceil(size / wc.BLOCK_WORDS)
    text = b"".join(wc.block_text(b, size, 0, 500, 1.1) for b in range(blocks))
    words, distinct, top = _summary_of(_plain_count(text), 5)
    summary = workloads.execute_pipeline("wordcount", size, {"map": 2, "reduce": 3}, 0,
                                         top_k=5, **params)
    assert (summary["words"], summary["distinct"], summary["top"]) == (words, distinct, top)
    assert words == size
    first = summary["top"].split()[0].split(":")
    assert first[0] == wc.word(0)  # Zipf: rank 0 is the most frequent word


TEXT = {
    "a.txt": "The quick brown fox — jumps over the lazy dog.\nThe dog sleeps; the FOX runs!\n",
    "sub/b.md": "naïve café  «über» the the the\t\tend",
    "sub/c.txt": "x" * 50 + " tail words here " + "y" * 30,
    "empty.txt": "",
}


def _expected(k: int = 4) -> tuple:
    return _summary_of(_plain_count("\n".join(TEXT.values()).encode()), k)


@pytest.fixture
def text_folder(tmp_path):
    for key, text in TEXT.items():
        path = tmp_path / "input" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path / "input"


@pytest.mark.parametrize("block_bytes", [1 << 20, 7, 1])
def test_wordcount_user_folder_in_byte_ranges(text_folder, monkeypatch, block_bytes):
    """Words cut by a range boundary are counted once, by the range they start in."""
    monkeypatch.setattr(wc, "BLOCK_BYTES", block_bytes)
    words, distinct, top = _expected()
    for tasks in (1, {"map": 3, "reduce": 2}):
        summary = workloads.execute_pipeline("wordcount", None, tasks, 0,
                                             input=str(text_folder), top_k=4)
        assert (summary["words"], summary["distinct"], summary["top"]) == (words, distinct, top)


def test_wordcount_size_is_the_inputs_bytes(text_folder):
    total = sum(len(t.encode()) for t in TEXT.values())
    pipeline = workloads.get_pipeline("wordcount")
    assert pipeline.validate(None, 1, {"input": str(text_folder)})[0] == total
    assert pipeline.validate(total, 1, {"input": str(text_folder)})[0] == total
    with pytest.raises(WorkloadError, match=f"size is set by the input \\({total} bytes"):
        pipeline.validate(5, 1, {"input": str(text_folder)})
    single = text_folder / "a.txt"
    assert pipeline.validate(None, 1, {"input": str(single)})[0] == single.stat().st_size


def test_wordcount_s3_prefix_input(s3, monkeypatch):
    import pyarrow.fs as pafs

    monkeypatch.setattr(wc, "BLOCK_BYTES", 5)
    fs = DataStore.from_uri(s3.uri("")).filesystem()
    for key, text in TEXT.items():
        with fs.open_output_stream(f"{s3.bucket}/texts/{key}") as out:
            out.write(text.encode())
    assert isinstance(fs, pafs.S3FileSystem)
    summary = workloads.execute_pipeline("wordcount", None, {"map": 2, "reduce": 2}, 0,
                                         input=s3.uri("texts"), top_k=4)
    assert (summary["words"], summary["distinct"], summary["top"]) == _expected()


@pytest.mark.parametrize(
    ("value", "message"),
    [("  ", "parameter 'input' is empty"), ("/no/such/folder", "not found")],
)
def test_wordcount_bad_input(value, message):
    with pytest.raises(WorkloadError, match=message):
        workloads.get_pipeline("wordcount").validate(None, 1, {"input": value})


def test_wordcount_empty_folder(tmp_path):
    with pytest.raises(WorkloadError, match="holds no files"):
        workloads.get_pipeline("wordcount").validate(None, 1, {"input": str(tmp_path)})


# -- ml and video ------------------------------------------------------------------------------


def test_ml_keep_chooses_the_best_models():
    size, params = SMALL["ml"]
    summary = workloads.execute_pipeline("ml", size, {"train": 2, "test": 2}, 0,
                                         **{**params, "keep": 2})
    kept = [int(i) for i in summary["kept"].split(",")]
    assert len(kept) == 2 and kept == sorted(kept) and set(kept) <= {0, 1, 2}


def test_ml_more_train_tasks_than_models_is_fine(reference):
    size, params = SMALL["ml"]
    assert workloads.execute_pipeline("ml", size, {"train": 5, "test": 4}, 0, **params) == \
        reference["ml"]


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("ml", {"keep": 9}, "'keep' (9) must be <= n_models (8)"),
        ("ml", {"components": 65}, "'components' must be <= 64"),
        ("ml", {"test_fraction": 1.0}, "'test_fraction' must be between 0 and 1"),
        ("ml", {"n_models": 0}, "'n_models' must be >= 1"),
        ("video", {"chunk": 50, "frames": 10}, "'chunk' (50) must be <= frames (10)"),
        ("video", {"resolution": 8}, "'resolution' must be >= 16"),
        ("wordcount", {"zipf": 0}, "'zipf' must be > 0"),
    ],
)
def test_bad_params(name, params, message):
    with pytest.raises(WorkloadError) as err:
        workloads.get_pipeline(name).validate(None, 1, params)
    assert message in str(err.value)


def test_ml_too_small_for_pca():
    with pytest.raises(WorkloadError, match="size of 'ml' must be >= 64"):
        workloads.get_pipeline("ml").validate(10)
