"""A hostile but fair user: every bad input is one line and exit 2, checked before any work,
with the store's rows exactly as they were; shared resources survive concurrent use; a dead
Ray head never hangs a command."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def command(cmd: str, *args: str, env: dict | None = None,
            timeout: int = 180) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RAYJOULE_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", f"rayjoule.{cmd}", *args], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def rows(db: Path) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT * FROM runs ORDER BY run_id").fetchall() + \
            conn.execute("SELECT * FROM tasks ORDER BY run_id, stage, task_id").fetchall()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A store with one finished run in it, which no bad input may change."""
    db = tmp_path_factory.mktemp("store") / "r.sqlite"
    proc = command("run", "--workload", "sleep", "--size", "0", "--tasks", "2", "--meter",
                   "tdp", "--idle-seconds", "0", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    return db


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("files")
    (d / "folder").mkdir()
    (d / "bad.yaml").write_text("lithops: [unclosed\n")
    (d / "spark.yaml").write_text("lithops:\n  backend: spark_on_a_toaster\n")
    (d / "plain.txt").write_text("not a folder")
    optuna_db = d / "study.sqlite"
    with sqlite3.connect(optuna_db) as conn:  # the shape of an Optuna study file
        conn.execute("CREATE TABLE studies (study_id INTEGER PRIMARY KEY, study_name TEXT)")
        conn.execute("CREATE TABLE trials (trial_id INTEGER PRIMARY KEY)")
    (d / "junk.sqlite").write_bytes(b"\x00\x01 this is not sqlite at all" * 40)
    return {"dir": d, "folder": d / "folder", "bad_yaml": d / "bad.yaml",
            "spark": d / "spark.yaml", "plain": d / "plain.txt", "optuna": optuna_db,
            "junk": d / "junk.sqlite"}


RUN = ("run", "--workload", "pi", "--size", "1e5", "--meter", "tdp", "--idle-seconds", "0")

BAD = [
    # (command and args, expected fragment); {folder} etc. are filled from the files fixture
    (RUN + ("--json", "/nonexistent/dir/out.json"), "does not exist"),
    (RUN + ("--json", "{folder}"), "is a folder"),
    (RUN + ("--size", "nan"), "size"),
    (RUN + ("--size", "inf"), "size"),
    (RUN + ("--size", "-5"), "size"),
    (RUN + ("--size", "1e15"), "--max-hours"),
    (RUN + ("--tasks", "0"), "tasks"),
    (RUN + ("--tasks", "abc"), "tasks"),
    (RUN + ("--tasks", "200000000"), "use fewer tasks"),
    (RUN + ("--tasks", "pca=2"), "unknown stage 'pca'"),
    (RUN + ("--num-cpus", "nan"), "num_cpus"),
    (RUN + ("--num-cpus", "0"), "num_cpus"),
    (RUN + ("--idle-seconds", "nan"), "idle_seconds"),
    (RUN + ("--tdp-watts", "-5"), "tdp_watts"),
    (RUN + ("--tdp-watts", "inf"), "tdp_watts"),
    (RUN + ("--max-hours", "0"), "max_hours"),
    (RUN + ("--concurrency", "0"), "concurrency"),
    (RUN + ("--repeats", "0"), "repeats"),
    (RUN + ("--workload", "nope"), "unknown workload"),
    (RUN + ("--workload", "os.path:join"), "not a workload"),
    (RUN + ("--workload", "no_such_module_xyz:THING"), "no_such_module_xyz"),
    (RUN + ("--param", "flavour=slow"), "flavour"),
    (RUN + ("--param", "nokey"), "key=value"),
    (RUN + ("--framework", "spark"), "invalid choice"),
    (RUN + ("--mode", "actors"), "needs framework 'ray'"),
    (RUN + ("--framework", "lithops", "--lithops-config", "{bad_yaml}"), "not valid YAML"),
    (RUN + ("--framework", "lithops", "--lithops-config", "{spark}"), "unknown backend"),
    (RUN + ("--framework", "lithops", "--lithops-config", "/nope.yaml"), "not found"),
    (RUN + ("--config", "{folder}"), "is a folder"),
    (RUN + ("--log-level", "chatty"), "log level"),
    (("run", "--workload", "wordcount", "--size", "1000", "--tasks", "map=2",
      "--data-store", "s3://no-such-bucket/x", "--meter", "tdp", "--idle-seconds", "0"),
     "no-such-bucket"),
    (("tune", "--storage", "notadb://x", "--frameworks", "native", "--meter", "tdp"),
     "--storage"),
    (("tune", "--storage", "sqlite:////nonexistent/dir/s.db", "--frameworks", "native",
      "--meter", "tdp"), "--storage"),
    (("tune", "--max-seconds", "nan", "--frameworks", "native", "--meter", "tdp"),
     "max-seconds"),
    (("tune", "--num-cpus", "0.5:nan", "--frameworks", "native", "--meter", "tdp"), "finite"),
    (("tune", "--trials", "0", "--meter", "tdp"), "--trials"),
    (("tune", "--objective", "time", "--meter", "tdp"), "does not involve energy"),
    (("tune", "--frameworks", "native", "--plot", "{plain}", "--meter", "tdp"),
     "not a folder"),
    (("compare", "--repeats", "0", "--meter", "tdp"), "--repeats"),
    (("compare", "--frameworks", "native,spark", "--meter", "tdp"), "framework"),
    (("compare", "--frameworks", "native", "--plot", "{plain}", "--meter", "tdp"),
     "not a folder"),
    (("export", "--out", "{plain}"), "not a folder"),
]


@pytest.mark.parametrize("args, fragment", BAD, ids=[" ".join(a[1:])[:60] for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_the_store_is_unchanged(store, files, args,
                                                                   fragment):
    args = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    before = rows(store)
    proc = command(args[0], *args[1:], "--db", str(store),
                   env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x",
                        "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"})
    assert proc.returncode == 2, proc.stderr + proc.stdout
    assert fragment in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert rows(store) == before


@pytest.mark.parametrize("which", ["optuna", "junk", "folder"])
def test_a_file_that_is_not_a_store_is_refused_unmodified(files, which):
    path = files[which]
    digest = None if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    proc = command(*RUN, "--db", str(path))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    if digest is not None:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
        assert not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()


def test_two_tunes_starting_together_on_a_new_study_both_work(tmp_path):
    db = tmp_path / "r.sqlite"
    args = [sys.executable, "-m", "rayjoule.tune", "--workload", "sleep", "--size", "0",
            "--frameworks", "native", "--tasks", "1:4", "--trials", "3", "--meter", "tdp",
            "--idle-seconds", "0", "--db", str(db), "--study-name", "together"]
    procs = [subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    import optuna

    study = optuna.load_study(study_name="together",
                              storage=f"sqlite:///{tmp_path / 'r.optuna.sqlite'}")
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 6


def test_a_dead_heads_leftover_address_never_hangs_a_command(tmp_path):
    ray_tmp = Path(tempfile.mkdtemp(prefix="rj", dir="/tmp"))  # Ray's socket paths are short
    (ray_tmp / "ray_current_cluster").write_text("127.0.0.1:9\n")  # nothing listens there
    proc = command("run", "--workload", "sleep", "--size", "0", "--framework", "ray",
                   "--meter", "tdp", "--idle-seconds", "0", "--db", str(tmp_path / "r.sqlite"),
                   env={"RAY_TMPDIR": str(ray_tmp)}, timeout=150)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_local_instance_serves_its_dashboard_on_loopback_only(tmp_path):
    """The dashboard can run code on the cluster, so it must face this machine only.

    (Ray 2.60's own gRPC servers bind every interface with no setting to change it; they
    are guarded by Ray's token authentication — documented in docs/cluster.md.)
    """
    script = (
        "import json, ray\n"
        "from rayjoule.cluster.connect import connect, disconnect\n"
        "connect(None)\n"
        "node = ray.nodes()[0]\n"
        "print(json.dumps({'ip': node['NodeManagerAddress'],"
        " 'dashboard': ray._private.worker.get_dashboard_url()}))\n"
        "disconnect()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAYJOULE_")}
    env["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="rj", dir="/tmp")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr
    import json

    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["dashboard"].split(":")[0] == "127.0.0.1"
    assert "Token authentication" not in proc.stderr  # Ray's notices need --log-level
