"""The built-in pipelines (ml, wordcount, video) end to end through ``rayjoule.run``.

The executor contract proves each executor on toy jobs; this proves the real pipelines on
every executor and data path a user has: native in-process and pooled, Ray tasks and actors
(object references between stages) and Lithops on localhost, with stage outputs in the
default local folder or on an S3-compatible server (moto on 127.0.0.1). Every run must
give the serial reference's summary for a non-default per-stage task mapping, report its
stages, name the stage of every task, conserve energy, and store and export the stages.
Then the commands: the per-stage table of ``rayjoule.run``, bad pipeline input refused
with exit 2 before anything is stored, per-stage bounds in ``tune``, and ``compare``'s
identical-summary check on a pipeline.

Sizes are a few seconds of work at most. Lithops' local workers are fresh interpreters
for every call, and the ml pipeline's import scikit-learn each time (about 20 s a run
here), so each pipeline runs on Lithops once, and the two stores are covered across them.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

import workloads
from rayjoule.core.config import RunConfig
from rayjoule.core.result import RunResult
from rayjoule.runs.session import run
from rayjoule.runs.store import Store
from workloads import DataStore

BUCKET = "rayjoule-pipelines"


@dataclass(frozen=True)
class Case:
    """A pipeline at a size of seconds, with a task mapping that differs from its defaults."""

    size: int
    tasks: dict[str, int]
    params: dict[str, Any] = field(default_factory=dict)


CASES = {
    "ml": Case(1200, {"train": 3, "test": 3}, {"n_models": 3, "trees": 3}),
    "wordcount": Case(20_000, {"map": 3, "reduce": 3}),
    "video": Case(6, {"decode": 3, "extract": 3, "sharpen": 1, "classify": 3},
                  {"frames": 24, "chunk": 6, "resolution": 32}),
}

EXECUTORS = {
    "native-1": {"framework": "native", "concurrency": 1},
    "native-2": {"framework": "native", "concurrency": 2},
    "ray-tasks": {"framework": "ray", "concurrency": 2},
    "ray-actors": {"framework": "ray", "mode": "actors", "concurrency": 2},
    "lithops": {"framework": "lithops", "concurrency": 2},
}

#: (pipeline, executor, store): "folder" is native's and Lithops' default temporary folder,
#: "s3" the moto server, "refs" Ray's object references (Ray takes no data store)
RUNS = [
    *[(p, e, "folder") for p in CASES for e in ("native-1", "native-2")],
    *[(p, e, "refs") for p in CASES for e in ("ray-tasks", "ray-actors")],
    *[(p, e, "s3") for p in CASES for e in ("native-1", "native-2")],
    ("ml", "lithops", "s3"),
    ("wordcount", "lithops", "s3"),
    ("video", "lithops", "folder"),
]  # wordcount on Lithops through the folder: test_compare_checks_identical_summaries…


@functools.cache
def reference(name: str) -> dict[str, Any]:
    """The serial in-process summary every framework must reproduce exactly."""
    case = CASES[name]
    return workloads.execute_pipeline(name, size=case.size, tasks=case.tasks, **case.params)


def expected_tasks(name: str) -> dict[str, int]:
    """Tasks per stage, in dependency order, that the case's mapping means."""
    pipe = workloads.get_pipeline(name)
    return {s.name: pipe.validate(CASES[name].size, CASES[name].tasks,
                                  CASES[name].params)[2][s.name] for s in pipe.order()}


def config(name: str, executor: str, data_store: str | None = None) -> RunConfig:
    case = CASES[name]
    return RunConfig(workload=name, size=case.size, params=case.params, tasks=case.tasks,
                     meter="tdp", idle_seconds=0, data_store=data_store,
                     **EXECUTORS[executor])


# -- an S3-compatible server ---------------------------------------------------------------

@dataclass(frozen=True)
class S3:
    endpoint: str
    bucket: str
    client: Any

    def keys(self, prefix: str) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for o in listing.get("Contents", [])]


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's threaded S3 server on a free loopback port with one bucket, for this module
    (starting it costs about a second); ``s3`` puts its credentials in each test's env."""
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    requests_log = logging.getLogger("werkzeug")  # one line per S3 request otherwise
    level = requests_log.level
    requests_log.setLevel(logging.WARNING)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket=BUCKET)
        yield S3(endpoint, BUCKET, client)
    finally:
        server.stop()
        requests_log.setLevel(level)


@pytest.fixture
def s3(s3_endpoint: S3, monkeypatch: pytest.MonkeyPatch) -> S3:
    """The server's endpoint and credentials in the environment, as a user would set them
    (workers in other processes, Lithops' included, inherit them)."""
    for var, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_ENDPOINT_URL", s3_endpoint.endpoint),
                       ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_REGION", "us-east-1"),
                       ("AWS_EC2_METADATA_DISABLED", "true")):
        monkeypatch.setenv(var, value)
    for var in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    return s3_endpoint


@pytest.fixture
def handed_over(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, list[str]]]:
    """What each run left in its data store just before the driver cleaned it up.

    The executors delete a run's prefix in the driver when the run ends, so a spy there sees
    every object the workers wrote, whichever process wrote them: proof that the stages'
    data really went through that store, not around it.
    """
    seen: list[tuple[str, str, list[str]]] = []
    original = DataStore.delete_prefix

    def spy(self: DataStore, prefix: str) -> None:
        if prefix.startswith("run-"):
            seen.append((self.kind, self.uri, [k for k, _ in self.list_inputs(prefix)]))
        original(self, prefix)

    monkeypatch.setattr(DataStore, "delete_prefix", spy)
    return seen


@pytest.fixture
def lithops_ready():
    pytest.importorskip("lithops")


# -- the checks every run must pass --------------------------------------------------------

def check_run(result: RunResult, name: str) -> None:
    """Summary, stages, task records and energy conservation of one pipeline run."""
    tasks = expected_tasks(name)
    assert result.summary == reference(name)
    assert result.status == "ok"
    assert (result.meter.name, result.meter.kind) == ("tdp", "modelled")
    assert [(s.name, s.tasks) for s in result.stages] == list(tasks.items())
    assert sorted((t.stage, t.task_id) for t in result.tasks) == sorted(
        (stage, i) for stage, n in tasks.items() for i in range(n))
    e = result.energy
    assert math.fsum(t.energy_j for t in result.tasks) + e.overhead_j == pytest.approx(
        e.total_j, rel=1e-9)
    assert math.fsum(s.energy.total_j for s in result.stages) == pytest.approx(
        e.total_j, rel=1e-9)
    assert math.fsum(s.energy.overhead_j for s in result.stages) == pytest.approx(
        e.overhead_j, rel=1e-9, abs=1e-12)
    for s in result.stages:
        mine = [t for t in result.tasks if t.stage == s.name]
        assert s.wall_s == pytest.approx(max(t.end for t in mine) - min(t.start for t in mine))
        se = s.energy
        assert se.total_j == pytest.approx(se.static_j + se.dynamic_j, rel=1e-9)
        assert se.static_j == pytest.approx(math.fsum(t.static_j for t in mine), rel=1e-9)
        assert se.overhead_j >= 0 and se.total_j > 0


def check_stored(db, result: RunResult, name: str) -> None:
    """The store gives back the same stages and every task's stage."""
    with Store(db) as store:
        stored = store.get(result.run_id)
    assert stored is not None
    assert [(s.name, s.tasks) for s in stored.stages] == [
        (s.name, s.tasks) for s in result.stages]
    assert sorted((t.stage, t.task_id) for t in stored.tasks) == sorted(
        (t.stage, t.task_id) for t in result.tasks)


def check_handed_over(seen, kind: str, name: str) -> None:
    """Every non-sink stage's every task left its output in a store of ``kind``."""
    tasks = expected_tasks(name)
    pipe = workloads.get_pipeline(name)
    assert len(seen) == 1, seen
    store_kind, _uri, keys = seen[0]
    assert store_kind == kind
    written: dict[str, set[int]] = {}
    for key in keys:  # run-<id>/<stage>/<task>.pkl or run-<id>/<stage>/<task>/b<bucket>.pkl
        _, stage, task = key.split("/")[:3]
        written.setdefault(stage, set()).add(int(task.split(".")[0]))
    read = {e.stage for s in pipe.stages for e in s.inputs}
    assert written == {stage: set(range(tasks[stage])) for stage in read}


# -- every pipeline on every executor and store --------------------------------------------

@pytest.mark.parametrize("name, executor, where", RUNS,
                         ids=[f"{p}-{e}-{w}" for p, e, w in RUNS])
def test_pipeline_runs_like_the_serial_reference(name, executor, where, tmp_path, request,
                                                 handed_over):
    if executor.startswith("ray"):
        request.getfixturevalue("ray_session")
    if executor == "lithops":
        request.getfixturevalue("lithops_ready")
    data_store, prefix = None, f"{name}-{executor}"
    if where == "s3":
        s3 = request.getfixturevalue("s3")
        data_store = f"s3://{s3.bucket}/{prefix}"
    db = tmp_path / "r.sqlite"
    result = run(config(name, executor, data_store), db=db)
    check_run(result, name)
    check_stored(db, result, name)
    if where == "refs":
        assert handed_over == []
        return
    check_handed_over(handed_over, "s3" if where == "s3" else "local", name)
    uri = handed_over[0][1]
    if where == "s3":
        # the run cleaned up after itself (pyarrow may leave the empty marker of the
        # store's own prefix, "<prefix>/", which holds no data)
        assert [k for k in s3.keys(prefix) if not k.endswith("/")] == []
    else:  # the executor's own temporary folder is removed when it closes
        assert not os.path.exists(DataStore.from_uri(uri).root)


def test_lithops_stages_survive_a_slow_localhost_job_manager(lithops_ready, monkeypatch):
    """Regression: Lithops' localhost backend restarts its workers for a job only once the
    job-manager thread of the previous one has exited. On a busy machine that thread wakes
    late, and a stage submitted in between used to wait forever; here it wakes a second
    late after every job, and every stage must still run."""
    from lithops import utils as lithops_utils

    wait = lithops_utils.CountDownLatch.wait

    def late_wait(self):
        wait(self)
        if threading.current_thread() is not threading.main_thread():
            time.sleep(1.0)  # only the job manager waits on latches, in its own thread

    monkeypatch.setattr(lithops_utils.CountDownLatch, "wait", late_wait)
    result = run(config("wordcount", "lithops"), db=":memory:")
    check_run(result, "wordcount")


# -- the store's Parquet export --------------------------------------------------------------

def test_parquet_export_carries_every_tasks_stage(tmp_path):
    import pyarrow.parquet as pq

    from rayjoule.cli import export

    db = tmp_path / "r.sqlite"
    result = run(config("video", "native-1"), db=db)
    assert export.main(["--db", str(db), "--out", str(tmp_path / "out")]) == 0
    runs = pq.read_table(tmp_path / "out" / "runs.parquet").to_pylist()
    tasks = pq.read_table(tmp_path / "out" / "tasks.parquet").to_pylist()
    (row,) = [r for r in runs if r["run_id"] == result.run_id]
    assert row["stages"] == list(expected_tasks("video"))
    assert row["tasks"] is None  # per-stage settings: no single number for the run
    assert json.loads(row["tasks_json"]) == CASES["video"].tasks
    mine = [t for t in tasks if t["run_id"] == result.run_id]
    assert sorted((t["stage"], t["task_id"]) for t in mine) == sorted(
        (t.stage, t.task_id) for t in result.tasks)
    for t in mine:  # each task row carries its own stage's task count
        assert t["tasks"] == expected_tasks("video")[t["stage"]]


# -- the commands ----------------------------------------------------------------------------

def test_run_command_prints_a_per_stage_table(ray_session, tmp_path, capsys):
    from rayjoule.cli import run as run_cli

    out = tmp_path / "r.json"
    code = run_cli.main(["--workload", "ml", "--framework", "ray",
                         "--tasks", "pca=1,train=4,test=2", "--size", "1200",
                         "--param", "n_models=4", "--param", "trees=3",
                         "--meter", "tdp", "--idle-seconds", "0",
                         "--db", str(tmp_path / "r.sqlite"), "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "stages [meter tdp, modelled]" in text
    data = json.loads(out.read_text())
    stages = {s["name"]: s for s in data["stages"]}
    assert {n: s["tasks"] for n, s in stages.items()} == {
        "pca": 1, "train": 4, "aggregate": 1, "test": 2}
    cells = [[c.strip() for c in line.strip().strip("│").split("│")]
             for line in text.splitlines() if "│" in line]
    rows = {row[0]: row for row in cells if len(row) == 8}  # the stage table's rows
    for name, stage in stages.items():  # one row per stage: tasks, cpus, …, total J
        assert rows[name][1] == str(stage["tasks"])
        assert rows[name][-1] == f"{stage['energy']['total_j']:.2f}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("case", ["unknown stage", "missing bucket", "unreachable store"])
def test_bad_pipeline_input_exits_2_in_one_line_before_any_work(case, s3_endpoint, tmp_path):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_ENDPOINT_URL": s3_endpoint.endpoint}
    args = ["--workload", "wordcount", "--size", "2000", "--framework", "native"]
    if case == "unknown stage":
        args += ["--tasks", "map=2,reduse=2"]
        message = "unknown stage 'reduse'"
    elif case == "missing bucket":
        args += ["--data-store", "s3://no-such-bucket/runs"]
        message = "bucket 'no-such-bucket' does not exist"
    else:
        env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{_free_port()}"  # nobody listens
        args += ["--data-store", f"s3://{BUCKET}/runs"]
        message = "cannot reach the S3 endpoint"
    db = tmp_path / "r.sqlite"
    proc = subprocess.run([sys.executable, "-m", "rayjoule.run", *args, "--meter", "tdp",
                           "--idle-seconds", "0", "--db", str(db)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert proc.stdout == ""
    if db.exists():
        assert sqlite3.connect(db).execute("SELECT count(*) FROM runs").fetchone() == (0,)
        assert sqlite3.connect(db).execute("SELECT count(*) FROM tasks").fetchone() == (0,)


def test_tune_searches_per_stage_bounds(tmp_path):
    from rayjoule.cli import tune

    db, out = tmp_path / "t.sqlite", tmp_path / "t.json"
    code = tune.main(["--workload", "wordcount", "--size", "20000", "--frameworks", "native",
                      "--tasks", "map=1:4,reduce=1:2", "--concurrency", "1:2", "--trials", "3",
                      "--meter", "tdp", "--idle-seconds", "0", "--db", str(db),
                      "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    trials = report["trials"]
    assert [t["state"] for t in trials] == ["COMPLETE"] * 3
    with Store(db) as store:
        for t in trials:
            tasks = t["params"]["tasks"]
            assert set(tasks) == {"map", "reduce"}
            assert 1 <= tasks["map"] <= 4 and 1 <= tasks["reduce"] <= 2
            result = store.get(t["run_id"])
            assert {s.name: s.tasks for s in result.stages} == {**tasks, "top": 1}
            assert result.summary == workloads.execute_pipeline("wordcount", size=20000)
    assert report["best"]["total_j"] == min(t["total_j"] for t in trials)


def test_compare_checks_identical_summaries_on_a_pipeline(ray_session, lithops_ready,
                                                          tmp_path):
    from rayjoule.cli import compare

    db, out = tmp_path / "c.sqlite", tmp_path / "c.json"
    case = CASES["wordcount"]
    code = compare.main(["--workload", "wordcount", "--size", str(case.size),
                         "--frameworks", "native,ray,lithops", "--repeats", "2",
                         "--tasks", "map=3,reduce=3", "--concurrency", "2",
                         "--meter", "tdp", "--idle-seconds", "0", "--db", str(db),
                         "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["summaries_compared"] == 6
    assert report["summary"] == reference("wordcount")
    with Store(db) as store:
        for fw, entry in report["frameworks"].items():
            assert len(entry["run_ids"]) == 2, fw
            for run_id in entry["run_ids"]:
                result = store.get(run_id)
                assert result.summary == reference("wordcount")
                assert [(s.name, s.tasks) for s in result.stages] == list(
                    expected_tasks("wordcount").items())
