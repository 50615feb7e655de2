"""The failure contract: whatever fails, wherever, the run ends in the store as ok, failed or
interrupted, the command exits with DESIGN.md's status and one line, and no process it
started outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

import meters
from rayjoule import RunConfig, RunFailed, run
from rayjoule.core.errors import UnmeteredHosts
from rayjoule.metering.host_meter import HostMeter
from rayjoule.runs.store import Store
from tests.meters.fake_powercap import make_powercap_tree

ROOT = Path(__file__).resolve().parents[3]


def cfg(**kw) -> RunConfig:
    fields = dict(workload="sleep", size=0.2, tasks=2, concurrency=2, meter="tdp",
                  idle_seconds=0)
    return RunConfig(**{**fields, **kw})


def statuses(db: Path) -> list[tuple[str, str | None]]:
    with Store(db) as store:
        return [(r["status"], r["error"]) for r in store.runs()]


class FailingMeter(meters.Meter):
    """Reads fine at the start of the run, then its counter device disappears."""

    name = "failing"
    kind = meters.MODELLED

    def __init__(self) -> None:
        super().__init__()
        self.domains = ["cpu"]
        self.reads = 0

    def _read(self) -> meters.Reading:
        self.reads += 1
        if self.reads > 1:
            raise meters.MeterError("energy counter vanished")
        return meters.Reading({"cpu": 0.0}, t=time.monotonic(), kind=self.kind,
                              source=self.name)

    @classmethod
    def _probe(cls, **options) -> meters.Probe:
        return meters.Probe(True, None, meters.MODELLED, ["cpu"])

    @property
    def idle_watts(self) -> float:
        return 0.0


def test_a_meter_failing_mid_run_stores_the_run_as_failed(tmp_path, monkeypatch):
    monkeypatch.setattr("rayjoule.metering.host_meter._build",
                        lambda name, scope, pids, tdp: FailingMeter())
    db = tmp_path / "r.sqlite"
    with pytest.raises(RunFailed, match="energy counter vanished"):
        run(cfg(meter="failing"), db=db)
    [(status, error)] = statuses(db)
    assert status == "failed" and "energy counter vanished" in error


def test_a_task_on_a_host_no_meter_saw_fails_the_run_naming_the_host(tmp_path, monkeypatch):
    monkeypatch.setattr("rayjoule.frameworks.task.host_key", lambda: "elsewhere:0000")
    db = tmp_path / "r.sqlite"
    with pytest.raises(RunFailed, match=r"elsewhere:0000 \(2 tasks\)"):
        run(cfg(), db=db)
    [(status, error)] = statuses(db)
    assert status == "failed" and "no meter saw" in error
    assert issubclass(UnmeteredHosts, Exception)


def test_a_store_that_cannot_be_written_fails_the_run_in_one_line(tmp_path, monkeypatch):
    def broken(self, result):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("rayjoule.runs.store.Store.finish", broken)
    db = tmp_path / "r.sqlite"
    with pytest.raises(RunFailed, match="No space left"):
        run(cfg(), db=db)
    [(status, error)] = statuses(db)
    assert status == "failed" and "storing the result failed" in error


def test_a_window_reopened_at_once_is_still_sampled():
    hm = HostMeter("tdp", sample_interval_s=0.05)
    try:
        for _ in range(3):  # close and reopen before the old sampler thread has exited
            wid = hm.start_window()
            time.sleep(0.3)
            window = hm.stop_window(wid)
            # opening and closing readings, and background samples between them
            assert len({t for t, _, _ in window.samples}) >= 4
    finally:
        hm.close()


def test_a_sample_that_fails_is_known_to_the_window(monkeypatch):
    hm = HostMeter("tdp", sample_interval_s=0.05)
    try:
        wid = hm.start_window()
        monkeypatch.setattr(hm, "read", lambda: (_ for _ in ()).throw(
            meters.MeterError("sysfs went away")))
        time.sleep(0.3)
        monkeypatch.undo()
        with pytest.raises(meters.MeterError, match="sysfs went away"):
            hm.stop_window(wid)
    finally:
        hm.close()


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def _wait_for_running_row(db: Path, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if db.exists():
            try:
                if any(s == "running" for s, _ in statuses(db)):
                    return
            except Exception:  # the store is being created right now
                pass
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("the run never started")


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _gone_within(procs: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(procs, timeout=seconds)
    return alive


@pytest.mark.parametrize("framework, sig, status", [("native", signal.SIGTERM, 143),
                                                     ("native", signal.SIGINT, 130),
                                                     ("ray", signal.SIGTERM, 143)])
def test_a_signal_marks_the_run_interrupted_and_exits_with_its_status(tmp_path, framework, sig,
                                                                      status):
    """On Ray too: ``ray.init`` replaces the driver's SIGTERM handler with ``sys.exit(15)``;
    the command's own must survive it."""
    db = tmp_path / "r.sqlite"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a Ray of its own
    proc = subprocess.Popen(_command("rayjoule.run", "--workload", "sleep", "--size", "30",
                                     "--tasks", "2", "--concurrency", "2", "--meter", "tdp",
                                     "--framework", framework, "--idle-seconds", "0",
                                     "--db", str(db)),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    _wait_for_running_row(db, proc)
    time.sleep(0.5)
    workers = _descendants(proc.pid)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    # Ray's own crash handler prints its "*** SIGTERM received" block; rayjoule says one line
    ours = [line for line in err.splitlines() if line.startswith("rayjoule")]
    assert "Traceback" not in err and len(ours) == 1
    if framework == "native":
        assert len(err.strip().splitlines()) == 1
    [(row_status, error)] = statuses(db)
    assert row_status == "interrupted"
    # Ray's GCS, raylet and dashboard are not waited for by ray.shutdown()
    assert not _gone_within(workers, 5.0 if framework == "native" else 30.0)


def test_sigkill_of_the_driver_leaves_no_native_pool_worker(tmp_path):
    db = tmp_path / "r.sqlite"
    proc = subprocess.Popen(_command("rayjoule.run", "--workload", "sleep", "--size", "60",
                                     "--tasks", "2", "--concurrency", "2", "--meter", "tdp",
                                     "--idle-seconds", "0", "--db", str(db)),
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_running_row(db, proc)
    deadline = time.monotonic() + 30
    while len(_descendants(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = _descendants(proc.pid)
    assert len(workers) >= 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not _gone_within(workers, 5.0), "pool workers outlived a SIGKILLed driver"


def test_sigkill_of_the_driver_leaves_no_lithops_worker(tmp_path):
    pytest.importorskip("lithops", reason="the Lithops workers need Lithops")
    db = tmp_path / "r.sqlite"
    proc = subprocess.Popen(_command("rayjoule.run", "--workload", "sleep", "--size", "60",
                                     "--tasks", "2", "--concurrency", "2", "--framework",
                                     "lithops", "--meter", "tdp", "--idle-seconds", "0",
                                     "--db", str(db)),
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_running_row(db, proc)
    time.sleep(4)  # Lithops' local runner and its workers start
    workers = [p for p in _descendants(proc.pid) if "orphans" not in " ".join(p.cmdline())]
    assert workers, "Lithops started no worker processes"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not _gone_within(workers, 6.0), "Lithops workers outlived a SIGKILLed driver"


def test_ctrl_c_in_tune_prints_one_line_and_keeps_completed_trials(tmp_path):
    db = tmp_path / "r.sqlite"
    proc = subprocess.Popen(_command("rayjoule.tune", "--workload", "sleep", "--size", "2",
                                     "--frameworks", "native", "--tasks", "1:2", "--trials",
                                     "50", "--meter", "tdp", "--idle-seconds", "0",
                                     "--db", str(db)),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # wait until one trial completed and another runs
        if db.exists():
            try:
                rows = statuses(db)
            except Exception:
                rows = []
            if sum(s == "ok" for s, _ in rows) >= 1 and any(s == "running" for s, _ in rows):
                break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    lines = [line for line in err.splitlines() if line.startswith("rayjoule")]
    assert len(lines) == 1 and "resume" in lines[0] and "Traceback" not in err
    rows = statuses(db)
    assert sum(s == "ok" for s, _ in rows) >= 1 and rows[-1][0] == "interrupted"


LOSES_ITS_INTERRUPT = """
import os, signal, sys
import rayjoule
from rayjoule.cli import run as run_cli
from rayjoule.cli.common import run_command

class LosesTheInterrupt:
    def __del__(self):  # an exception raised in a finaliser is printed and dropped
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100_000):  # the handler runs here
            pass

def main(argv):
    then, db = argv[0], argv[-1]
    LosesTheInterrupt()
    print("went on after the interrupt", flush=True)
    if then == "run":
        return run_cli.main(argv[1:])
    if then == "measure":
        with rayjoule.measure("block", meter="tdp", db=db, idle_seconds=0):
            print("the block ran", flush=True)
    return 0

sys.exit(run_command(main, sys.argv[1:]))
"""


@pytest.mark.parametrize("then", ["run", "measure", "finish"])
def test_a_ctrl_c_python_drops_still_stops_the_command(tmp_path, then):
    """Python drops a KeyboardInterrupt raised in a finaliser or an at-fork hook (CI saw a
    tune run on after Ctrl-C came during a fork): the command stops anyway, as Ctrl-C does —
    before its next run, before a measured block, or as it ends."""
    db = tmp_path / "r.sqlite"
    proc = subprocess.run([sys.executable, "-c", LOSES_ITS_INTERRUPT, then, "--workload",
                           "sleep", "--size", "0.2", "--tasks", "1", "--meter", "tdp",
                           "--idle-seconds", "0", "--db", str(db)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "went on after the interrupt" in proc.stdout  # Python did drop it
    assert proc.returncode == 130, proc.stderr
    # ... and would have printed "Exception ignored" with a traceback: the user sees the
    # command's one line only
    assert proc.stderr.splitlines() == ["rayjoule: interrupted; results stored so far are kept"]
    assert "the block ran" not in proc.stdout
    assert not db.exists() or statuses(db) == []  # no run began


# -- the failure contract as a new user meets it: one table, one test ----------------------

#: writable by nobody, root included (procfs refuses new files)
UNWRITABLE = "/proc/rayjoule-cannot-write-here"


@dataclass(frozen=True)
class Failure:
    """One way a command can fail: what the user typed and what they must see.

    ``stored`` are the run statuses the store holds afterwards; empty means no store and
    no file may appear at all. ``counters_vanish`` removes the RAPL counters of the fake
    powercap tree once the run is under way.
    """

    name: str
    argv: tuple[str, ...]
    status: int
    text: str
    stored: tuple[str, ...] = ()
    counters_vanish: bool = False


FAILURES = [
    Failure("tasks that cannot fit in memory",
            ("rayjoule.workloads", "pi", "--tasks", "1e12"), 2, "use fewer tasks"),
    Failure("a store in a folder nobody can write",
            ("rayjoule.run", "--workload", "pi", "--size", "1e5", "--meter", "tdp",
             "--idle-seconds", "0", "--db", f"{UNWRITABLE}.sqlite"), 2, "not writable"),
    Failure("--json to a folder nobody can write",
            ("rayjoule.workloads", "pi", "--tasks", "4", "--size", "1e5",
             "--json", f"{UNWRITABLE}.json"), 2, "not writable"),
    Failure("a meter counter that becomes unreadable mid-run",
            ("rayjoule.run", "--workload", "sleep", "--size", "8", "--tasks", "2",
             "--concurrency", "2", "--meter", "rapl", "--idle-seconds", "0", "--db", "{db}"),
            1, "cannot read", stored=("failed",), counters_vanish=True),
]


@pytest.mark.parametrize("failure", FAILURES, ids=[f.name for f in FAILURES])
def test_a_failure_is_its_exit_status_and_exactly_one_line(tmp_path, failure):
    tree = make_powercap_tree(tmp_path / "powercap", sockets=1)
    work = tmp_path / "work"
    work.mkdir()
    db = work / "r.sqlite"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAYJOULE_")},
           "RAYJOULE_POWERCAP_ROOT": str(tree.root), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(_command(*(a.format(db=db) for a in failure.argv)), cwd=work,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if failure.counters_vanish:
        _wait_for_running_row(db, proc)
        time.sleep(1.0)  # the meter has read its counters; now they go away
        for zone in tree.zones.values():
            zone.energy_path.unlink()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == failure.status, err
    assert len(err.splitlines()) == 1 and failure.text in err, err
    assert "Traceback" not in err
    if failure.stored:
        assert [status for status, _ in statuses(db)] == list(failure.stored)
        assert failure.text in statuses(db)[0][1]
    else:
        assert not list(work.iterdir()), "bad input must leave nothing behind"


def test_a_store_write_that_fails_mid_command_is_exit_1_in_one_line(tmp_path, capsys):
    """A command whose store turns busy after it opened it (another process's write held
    past the wait) fails the work — exit 1, one line, the runs stored before kept — instead
    of a traceback of SQLite's error."""
    import sqlite3

    from rayjoule.cli.common import run_command

    db = tmp_path / "r.sqlite"

    def main(argv):
        with Store(db, busy_wait_s=0.1) as store:
            store.begin("kept", workload="pi", framework="native", config={})
            other = sqlite3.connect(db, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            try:
                store.begin("second", workload="pi", framework="native", config={})
            finally:
                other.execute("ROLLBACK")
                other.close()
        return 0

    assert run_command(main, []) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is busy" in err and "Traceback" not in err, err
    assert [status for status, _ in statuses(db)] == ["running"]
