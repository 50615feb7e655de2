"""One precedence for every command: arguments > environment > --config file > defaults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rayjoule.runs.store import Store

ROOT = Path(__file__).resolve().parents[3]


def command(cmd: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RAYJOULE_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", f"rayjoule.{cmd}", *args], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=300)


def stored_configs(db: Path) -> list[dict]:
    with Store(db) as store:
        return [json.loads(r["config_json"]) for r in store.runs() if r["parent_id"] is None]


CONFIG = """
[run]
workload = "sleep"
size = 0.05
meter = "tdp"
idle_seconds = 0.5
tasks = 2

[tune]
trials = 2
frameworks = "native"
tasks = "1:2"
num_cpus = "1"

[compare]
repeats = 2
frameworks = "native"
"""


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "rayjoule.toml"
    path.write_text(CONFIG)
    return path


@pytest.mark.parametrize("cmd", ["tune", "compare", "run"])
def test_the_file_sets_what_nothing_else_does(tmp_path, config_file, cmd):
    db = tmp_path / "r.sqlite"
    proc = command(cmd, "--config", str(config_file), "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    configs = stored_configs(db)
    expected = {"tune": 2, "compare": 2, "run": 1}[cmd]
    assert len(configs) == expected
    assert {c["workload"] for c in configs} == {"sleep"}
    assert {c["idle_seconds"] for c in configs} == {0.5}


@pytest.mark.parametrize("cmd", ["tune", "compare", "run"])
def test_environment_beats_the_file_and_arguments_beat_both(tmp_path, config_file, cmd):
    db = tmp_path / "env.sqlite"
    proc = command(cmd, "--config", str(config_file), "--db", str(db),
                   env={"RAYJOULE_IDLE_SECONDS": "0"})
    assert proc.returncode == 0, proc.stderr
    assert {c["idle_seconds"] for c in stored_configs(db)} == {0.0}
    db = tmp_path / "arg.sqlite"
    proc = command(cmd, "--config", str(config_file), "--db", str(db), "--idle-seconds", "0.1",
                   env={"RAYJOULE_IDLE_SECONDS": "0"})
    assert proc.returncode == 0, proc.stderr
    assert {c["idle_seconds"] for c in stored_configs(db)} == {0.1}


BAD_FILES = [
    ("folder", None, "is a folder"),
    ("latin1.toml", b"[run]\nworkload = \"caf\xe9\"\n", "not UTF-8"),
    ("broken.toml", b"[run\nworkload = 1", "not valid TOML"),
    ("wrongtype.toml", b"[run]\nworkload = 5\n", "workload must be text"),
    ("nottable.toml", b"run = 5\n", "[run] must be a table"),
    ("badtasks.toml", b"[run]\ntasks = \"many\"\n", "tasks must be an integer"),
    ("unknown.toml", b"[run]\nworkers = 3\n", "unknown config field"),
    ("tunetype.toml", b"[tune]\ntrials = \"many\"\n", "trials"),
    ("tuneunknown.toml", b"[tune]\nbogus = 1\n", "unknown setting 'bogus'"),
]


@pytest.mark.parametrize("name, content, message", BAD_FILES)
def test_a_config_file_of_the_wrong_shape_is_one_line_exit_2(tmp_path, name, content, message):
    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    db = tmp_path / "r.sqlite"
    cmd = "tune" if name.startswith("tune") else "run"
    proc = command(cmd, "--config", str(path), "--db", str(db), "--meter", "tdp")
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not db.exists()
