"""``rayjoule.measure`` / ``@rayjoule.measured``: plain Ray code metered per task.

The pure parts (choosing the block's tasks, waiting for events, splitting CPU time) are
tested with fakes; the Ray tests share the session's 2-CPU instance (its task events come
from the GCS: the fixture starts no dashboard).
"""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import rayjoule
from rayjoule import ConfigError, RayjouleError
from rayjoule.runs.measured_block import task_events, worker_cpu
from rayjoule.runs.measured_block.task_events import EventBatch, TaskEvent
from rayjoule.runs.measured_block.worker_cpu import WorkerCpu
from rayjoule.runs.store import Store

ROOT = Path(__file__).resolve().parents[3]


def ev(task_id="t", *, name="f", kind="NORMAL_TASK", start=10.0, end=11.0, state="FINISHED",
       node="n1", pid=1, cpus=1.0, actor=None, worker="w1"):
    return TaskEvent(task_id, 0, name, kind, actor, node, pid, worker, cpus, start, end, state)


# -- choosing the block's tasks ---------------------------------------------------
def test_select_keeps_attempts_that_began_inside_the_block_and_counts_the_rest():
    events = [
        ev("a", start=10.5, end=11.0),
        ev("early", start=9.0, end=10.5),            # began before, ended inside
        ev("late", start=20.5, end=21.0),
        ev("never", start=None, end=None, state="PENDING_NODE_ASSIGNMENT"),
        ev("driver", kind="DRIVER_TASK", start=1.0, end=None, state="RUNNING"),
        ev("probe", kind="ACTOR_TASK", name="RayjouleCpuSampler.sample", start=10.2),
        ev("meter", kind="ACTOR_TASK", name="MeterActor.stop_window", start=10.3),
        ev("long", start=12.0, end=None, state="RUNNING"),
    ]
    sel = task_events.select(events, 10.0, 20.0, ended_before=2)  # 2 skipped by the reader
    assert [t.task_id for t in sel.tasks] == ["a", "long"]
    assert sel.excluded == {"before_block": 3, "after_block": 1, "not_started": 1,
                            "driver": 1, "rayjoule": 2}
    assert sel.running_at_exit == 1 and sel.tasks[1].end == 20.0  # clipped to the block


def test_locate_gives_an_actors_creation_task_the_node_of_its_worker():
    creation = ev("c", kind="ACTOR_CREATION_TASK", name="A.__init__", node="", actor="x")
    call = ev("m", kind="ACTOR_TASK", name="A.f", node="n7", actor="x")
    assert [t.node_id for t in task_events.locate([creation, call], [creation, call])] == \
        ["n7", "n7"]


def test_state_api_rows_become_task_events():
    row = SimpleNamespace(task_id="ab", attempt_number=1, name="Counter.incr",
                          func_or_class_name="Counter.incr", type="ACTOR_TASK",
                          actor_id="cd", node_id="n", worker_pid=42, worker_id="w",
                          required_resources={"CPU": 0.5}, start_time_ms=1500,
                          end_time_ms=2500, state="FINISHED")
    e = task_events._from_state(row)
    assert (e.name, e.kind, e.pid, e.cpus, e.start, e.end, e.attempt) == \
        ("Counter.incr", "ACTOR_TASK", 42, 0.5, 1.5, 2.5, 1)


# -- waiting for Ray's asynchronous task events -----------------------------------
class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.now += s


def settle(reads, clock, **kw):
    batches = iter(reads)
    polls = []

    def read():
        polls.append(clock.now)
        return EventBatch(next(batches), "fake")

    kw = {"ended_at": 100.0, "interval_s": 1.0, "limit_s": 5.0, **kw}
    batch, settled = task_events.settle(read, 10.0, 20.0, clock=clock, sleep=clock.sleep, **kw)
    return batch, settled, polls


def test_settle_reads_once_after_one_report_interval_when_everything_has_ended():
    clock = FakeClock()
    batch, settled, polls = settle([[ev("a")]], clock)
    assert settled and polls == [pytest.approx(100.0 + 1.0 + task_events.GRACE_S)]


def test_settle_waits_for_a_task_whose_end_arrives_later():
    clock = FakeClock()
    running = ev("a", end=None, state="RUNNING")
    batch, settled, polls = settle([[running], [running], [ev("a")]], clock)
    assert settled and len(polls) == 3 and batch.events[0].state == "FINISHED"


def test_settle_waits_for_the_workers_half_of_a_tasks_events():
    clock = FakeClock()
    half = ev("a", pid=0, node="")  # its profile event came, its status update not yet
    batch, settled, polls = settle([[half], [ev("a")]], clock)
    assert settled and len(polls) == 2 and batch.events[0].pid == 1


def test_settle_waits_for_a_submitted_task_whose_start_has_not_been_reported():
    clock = FakeClock()
    submitted = ev("a", start=None, end=None, state="SUBMITTED_TO_WORKER")
    batch, settled, polls = settle([[submitted], [ev("a")]], clock)
    assert settled and len(polls) == 2 and batch.events[0].state == "FINISHED"


def test_settle_accepts_tasks_that_stay_running_past_the_block():
    clock = FakeClock()
    running = ev("a", end=None, state="RUNNING")
    batch, settled, polls = settle([[running]] * 20, clock)
    assert settled and polls[-1] - polls[0] >= 1.0 + task_events.GRACE_S


def test_settle_gives_up_at_its_limit_and_says_so():
    clock = FakeClock()
    states = iter(range(1000))  # a task whose state keeps changing never settles
    reads = ([ev("a", end=None, state=f"RUNNING{next(states)}")] for _ in range(1000))
    batch, settled, polls = settle(reads, clock, limit_s=2.0)
    assert not settled and polls[-1] <= 100.0 + 2.0 + 1e-9


# -- CPU time per task --------------------------------------------------------------
def test_a_workers_cpu_time_is_split_among_its_tasks_by_wall_time():
    tasks = [ev("a", start=10.0, end=11.0), ev("b", start=11.0, end=14.0),
             ev("c", pid=2, start=10.0, end=12.0)]
    before = {"n1": {1: WorkerCpu(5, 1.0, 2.0), 2: WorkerCpu(6, 1.0, 1.0)}}
    after = {"n1": {1: WorkerCpu(5, 1.0, 6.0), 2: WorkerCpu(6, 1.0, 2.5)}}
    cpu, basis = worker_cpu.task_cpu(tasks, before, after, lambda t: t.cpus)
    assert cpu == pytest.approx([1.0, 3.0, 1.5]) and basis == ["sampled"] * 3


def test_a_worker_started_in_the_block_leaves_its_start_up_to_overhead():
    tasks = [ev("a", start=12.0, end=13.0)]  # the process was created at 11.0
    before = {"n1": {}}
    after = {"n1": {1: WorkerCpu(7, 11.0, 0.8)}}
    cpu, basis = worker_cpu.task_cpu(tasks, before, after, lambda t: t.cpus)
    assert cpu == pytest.approx([0.4]) and basis == ["sampled"]


def test_a_reused_pid_is_a_new_process_and_a_vanished_worker_is_estimated():
    tasks = [ev("a", start=12.0, end=13.0), ev("b", pid=3, start=10.0, end=12.0, cpus=2.0)]
    before = {"n1": {1: WorkerCpu(5, 1.0, 50.0), 3: WorkerCpu(6, 1.0, 1.0)}}
    after = {"n1": {1: WorkerCpu(9, 12.0, 0.5)}}  # pid 1 belongs to another process now
    cpu, basis = worker_cpu.task_cpu(tasks, before, after, lambda t: t.cpus)
    assert cpu == pytest.approx([0.5, 4.0]) and basis == ["sampled", "estimated"]


def test_measure_is_exported_without_importing_ray_at_import_time():
    code = ("import sys, rayjoule; assert 'ray' not in sys.modules; "
            "assert rayjoule.measure.__module__ == 'rayjoule.runs.measured_block.block'; "
            "assert {'measure', 'measured'} <= set(rayjoule.__all__); "
            "assert 'ray' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- arguments ------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"name": ""}, "non-empty name"),
    ({"idle_seconds": -1}, "idle_seconds"),
    ({"settle_s": float("nan")}, "settle_s"),
    ({"tdp_scope": "rack"}, "tdp_scope"),
    ({"db": 3}, "db must be"),
])
def test_bad_arguments_are_refused_before_anything_runs(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        rayjoule.measure(**kwargs)
    with pytest.raises(ConfigError, match=match):
        rayjoule.measured(**kwargs)(lambda: None)


def test_a_result_is_only_there_after_the_block():
    with pytest.raises(RayjouleError, match="never ran"):
        _ = rayjoule.measure("x").result


# -- metering real Ray code ------------------------------------------------------------
def program(ray):
    """A few tasks and an actor, defined here so Ray ships them by value."""
    @ray.remote
    def square(x):
        t = time.perf_counter()
        while time.perf_counter() - t < 0.005:
            pass
        return x * x

    @ray.remote
    class Counter:
        def __init__(self):
            self.n = 0

        def incr(self):
            self.n += 1
            return self.n

    @ray.remote(max_retries=0)
    def boom():
        raise ValueError("boom")

    return square, Counter, boom


def opts(tmp_path, **kw):
    return {"meter": "tdp", "idle_seconds": 0, "db": str(tmp_path / "m.sqlite"), **kw}


def conserved(r):
    tasks = math.fsum(t.energy_j for t in r.tasks)
    overhead = math.fsum(h.overhead_j for h in r.hosts)
    return tasks + overhead == pytest.approx(r.energy.total_j, rel=1e-9)


def test_a_block_of_ray_tasks_and_actor_calls_is_metered_per_task(ray_session, tmp_path):
    square, Counter, _ = program(ray_session)
    entered = time.time()
    with rayjoule.measure("squares", **opts(tmp_path)) as m:
        assert ray_session.get([square.remote(i) for i in range(12)]) == \
            [i * i for i in range(12)]
        counter = Counter.remote()
        assert ray_session.get([counter.incr.remote() for _ in range(4)])[-1] == 4
    left = time.time()
    r = m.result
    assert r.status == "ok" and r.workload == "squares" and r.framework == "ray"
    assert r.meter.kind == "modelled" and all(h.meter.name == "tdp" for h in r.hosts)
    stages = {s.name: s.tasks for s in r.stages}
    assert stages == {"square": 12, "Counter.__init__": 1, "Counter.incr": 4}
    assert r.summary["tasks_seen"] == len(r.tasks) == 17
    assert r.summary["events_dropped"] is False and r.summary["events_settled"] is True
    assert r.summary["task_source"] == "gcs"
    assert conserved(r)
    assert all(entered <= t.start <= t.end <= left + 1 for t in r.tasks)
    node_ids = {n["NodeID"] for n in ray_session.nodes()}
    assert {t.node_id for t in r.tasks} <= node_ids
    assert sum(t.cpu_s for t in r.tasks if t.stage == "square") > 0
    with Store(tmp_path / "m.sqlite") as store:
        stored = store.get(r.run_id)
        assert stored.status == "ok" and stored.config["name"] == "squares"
        assert len(stored.tasks) == 17 and conserved(stored)
        assert stored.energy.total_j == pytest.approx(r.energy.total_j)


def test_blocks_cannot_nest_or_overlap(ray_session, tmp_path):
    refused = []

    def other_thread():
        try:
            with rayjoule.measure("beside", **opts(tmp_path)):
                pass
        except RayjouleError as exc:
            refused.append(str(exc))

    with rayjoule.measure("outer", **opts(tmp_path)) as m:
        with pytest.raises(RayjouleError, match="cannot nest or overlap.*'outer'"):
            with rayjoule.measure("inner", **opts(tmp_path)):
                pass
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert refused and "'outer'" in refused[0]
    assert m.result.status == "ok"
    with Store(tmp_path / "m.sqlite") as store:
        assert [row["workload"] for row in store.runs()] == ["outer"]
    with pytest.raises(RayjouleError, match="already run"):
        with m:
            pass


def test_an_exception_in_the_block_stores_a_failed_run_and_propagates(ray_session, tmp_path):
    square, _, boom = program(ray_session)
    with pytest.raises(ray_session.exceptions.RayTaskError) as caught:
        with rayjoule.measure("doomed", **opts(tmp_path)) as m:
            ray_session.get([square.remote(i) for i in range(3)])
            ray_session.get(boom.remote())
    assert isinstance(caught.value.cause, ValueError)
    r = m.result
    assert r.status == "failed" and "boom" in r.error
    assert {t.stage: t.framework_stats["state"] for t in r.tasks} == \
        {"square": "FINISHED", "boom": "FAILED"}
    assert conserved(r)
    with Store(tmp_path / "m.sqlite") as store:
        row = store.get_row(r.run_id)
        assert row["status"] == "failed" and "boom" in row["error"]
        assert len(store.tasks(r.run_id)) == 4


def attributing(m):
    """Whether the block's attribution thread is running (threads are public by name)."""
    return any(t.name == f"rayjoule-measure-{m.run_id}" and t.is_alive()
               for t in threading.enumerate())


def test_leaving_a_block_leaves_the_attribution_to_a_thread_that_result_waits_for(
        ray_session, tmp_path):
    square, _, _ = program(ray_session)
    with rayjoule.measure("behind", **opts(tmp_path)) as m:
        ray_session.get([square.remote(i) for i in range(3)])
    # the thread first sleeps one report interval: the events cannot have been read yet
    assert "stop" in m.phases_s and "settle" not in m.phases_s
    assert attributing(m)
    r = m.result
    assert not attributing(m) and {"settle", "assemble", "store"} <= set(m.phases_s)
    assert r.status == "ok" and len(r.tasks) == 3 and conserved(r)
    assert m.config["background"] is True
    with Store(tmp_path / "m.sqlite") as store:
        assert store.get_row(r.run_id)["status"] == "ok" and len(store.tasks(r.run_id)) == 3


def test_background_false_attributes_before_the_block_is_left(ray_session, tmp_path):
    square, _, _ = program(ray_session)
    with rayjoule.measure("here", background=False, **opts(tmp_path)) as m:
        ray_session.get([square.remote(i) for i in range(2)])
    assert not attributing(m) and {"settle", "assemble", "store"} <= set(m.phases_s)
    assert len(m.result.tasks) == 2 and m.result.config["background"] is False


def test_a_block_may_open_while_the_previous_one_is_attributed(ray_session, tmp_path):
    square, Counter, _ = program(ray_session)
    with rayjoule.measure("first", **opts(tmp_path)) as first:
        ray_session.get([square.remote(i) for i in range(3)])
    with rayjoule.measure("second", **opts(tmp_path)) as second:
        counter = Counter.remote()
        ray_session.get([counter.incr.remote() for _ in range(2)])
    a, b = first.result, second.result
    assert [t.stage for t in a.tasks] == ["square"] * 3
    assert sorted(t.stage for t in b.tasks) == ["Counter.__init__", "Counter.incr",
                                                "Counter.incr"]
    assert conserved(a) and conserved(b)


def test_a_failure_found_after_the_block_is_raised_by_result_and_stored(
        ray_session, tmp_path, monkeypatch, caplog):
    from rayjoule.core.errors import RunFailed
    from rayjoule.runs.measured_block import task_records

    def broken(*args, **kwargs):
        raise RuntimeError("events unreadable")

    monkeypatch.setattr(task_records, "records", broken)
    square, _, _ = program(ray_session)
    with rayjoule.measure("late", **opts(tmp_path)) as m:  # leaving does not raise
        ray_session.get(square.remote(1))
    with pytest.raises(RunFailed, match="failed after the block.*events unreadable"):
        _ = m.result
    assert "events unreadable" in caplog.text
    with Store(tmp_path / "m.sqlite") as store:
        row = store.get_row(m.run_id)
        assert row["status"] == "failed" and "events unreadable" in row["error"]


def test_ray_shutdown_is_never_replaced_and_a_block_read_too_late_is_stored_failed(tmp_path):
    """In a fresh interpreter that starts its own Ray: ``ray.shutdown`` is the same object
    after measured blocks; ``m.wait()`` and ``rayjoule.wait_all()`` before ``ray.shutdown()``
    keep every block; a block whose events Ray took down with it is stored ``failed`` with a
    message that says what to do, and ``result`` raises it."""
    code = f"""
import ray, rayjoule
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
shutdown = ray.shutdown

@ray.remote
def f(x):
    return x

def block(name):
    with rayjoule.measure(name, meter="tdp", idle_seconds=0,
                          db={str(tmp_path / 's.sqlite')!r}) as m:
        ray.get([f.remote(i) for i in range(5)])
    return m

first = block("waited")
print("waited", len(first.wait().tasks), first.result.status)
second = block("all")
rayjoule.wait_all()
print("all", len(second.result.tasks), second.result.status)
third = block("too-soon")
ray.shutdown()
try:
    third.result
except rayjoule.RunFailed as exc:
    print("too-soon raised", exc)
print("same shutdown", ray.shutdown is shutdown)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "waited 5 ok" in out.stdout and "all 5 ok" in out.stdout
    assert "same shutdown True" in out.stdout
    assert "too-soon raised" in out.stdout and "m.wait()" in out.stdout
    with Store(tmp_path / "s.sqlite") as store:
        rows = {row["workload"]: row for row in store.runs()}
    assert [rows[n]["status"] for n in ("waited", "all", "too-soon")] == ["ok", "ok", "failed"]
    assert "Ray was shut down before" in rows["too-soon"]["error"]
    assert "rayjoule.wait_all()" in rows["too-soon"]["error"]


def test_ten_blocks_in_a_row_in_one_process_are_all_stored_ok(ray_session, tmp_path):
    square, _, _ = program(ray_session)
    blocks = []
    for i in range(10):
        with rayjoule.measure(f"b{i}", **opts(tmp_path)) as m:
            ray_session.get([square.remote(j) for j in range(2)])
        blocks.append(m)
    rayjoule.wait_all()
    assert not any(attributing(m) for m in blocks)
    assert all(m.result.status == "ok" and len(m.result.tasks) == 2 for m in blocks)
    with Store(tmp_path / "m.sqlite") as store:
        rows = store.runs()
    assert [r["workload"] for r in rows] == [f"b{i}" for i in range(10)]
    assert {r["status"] for r in rows} == {"ok"}


def test_the_decorator_meters_each_call_and_returns_the_functions_value(ray_session, tmp_path):
    square, _, _ = program(ray_session)

    @rayjoule.measured(**opts(tmp_path))
    def driver(n):
        """Squares."""
        return sum(ray_session.get([square.remote(i) for i in range(n)]))

    assert driver(5) == 30
    assert driver.__doc__ == "Squares." and driver.__name__ == "driver"
    r = driver.last_result
    assert r.workload.endswith("driver") and len(r.tasks) == 5 and conserved(r)
    assert driver.last.run_id == r.run_id


def test_the_example_workload_loads_by_import_path_and_is_deterministic():
    import workloads

    wl = workloads.get("examples.user_workload:WORKLOAD")
    summaries = []
    for tasks in (1, 3):
        size, params = wl.validate(100_000, tasks, {})
        partials = [wl.map(c) for c in wl.partition(tasks, size, 0, params)]
        summaries.append(wl.summary(wl.reduce(partials)))
    assert summaries == [{"longest_start": 77031, "steps": 350}] * 2
