"""Where a command's results go: ``--json -``, ``--json`` through links, the usage name,
and output to a pipe laid out for ``COLUMNS`` (80 when unset)."""

import json
import os
import shlex
import subprocess
import sys

import pytest

QUICK_RUN = ("--workload", "sleep", "--size", "0", "--meter", "tdp", "--idle-seconds", "0")
CONSOLE_SCRIPT = "import sys; from rayjoule.cli.console import main; sys.exit(main())"


def env_without_columns() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}


def cli(*args, timeout=300, env=None):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          timeout=timeout, env=env or env_without_columns())


def console_script(*args, timeout=120):
    """The ``rayjoule`` console script's entry point, run as the installed script runs it."""
    return subprocess.run([sys.executable, "-c", CONSOLE_SCRIPT, *args], capture_output=True,
                          text=True, timeout=timeout, env=env_without_columns())


def assert_fits(text: str, width: int = 80) -> None:
    """Every line within ``width``, but for a lone path or URL, which no width can fold."""
    long = [line for line in text.splitlines() if len(line) > width and " " in line.strip()]
    assert not long, f"lines wider than {width} columns: {long}"


# -- --json ----------------------------------------------------------------------------------

def test_json_dash_puts_the_json_alone_on_stdout_and_the_report_on_stderr(tmp_path):
    proc = cli("rayjoule.run", *QUICK_RUN, "--db", str(tmp_path / "r.sqlite"), "--json", "-")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["workload"] == "sleep" and data["meter"] == {"name": "tdp", "kind": "modelled"}
    assert "[meter tdp, modelled]" in proc.stderr
    assert not (tmp_path / "-").exists() and not os.path.exists("-")


def test_json_dash_works_for_meters_too():
    proc = cli("rayjoule.meters", "--sample-seconds", "0", "--no-gpu", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    assert "chosen" in json.loads(proc.stdout)


def test_json_through_a_symlink_keeps_the_link_and_fills_its_target(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old\n")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    proc = cli("rayjoule.meters", "--sample-seconds", "0", "--no-gpu", "--json", str(link))
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert "chosen" in json.loads(target.read_text())


def test_history_json_through_a_symlink_keeps_the_link(tmp_path):
    db = tmp_path / "r.sqlite"
    assert cli("rayjoule.run", *QUICK_RUN, "--db", str(db)).returncode == 0
    target = tmp_path / "h.json"
    link = tmp_path / "link.json"
    link.symlink_to(target)  # dangling until written: the target is created through it
    target.write_text("")
    proc = cli("rayjoule.history", "--db", str(db), "--json", str(link))
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink()
    assert json.loads(target.read_text())["jobs"][0]["workload"] == "sleep"


def test_json_into_a_fifo_is_written_through(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-m", "rayjoule.meters", "--sample-seconds", "0",
                             "--no-gpu", "--json", str(fifo)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env_without_columns())
    with open(fifo) as reader:
        data = json.loads(reader.read())
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    assert "chosen" in data
    assert fifo.is_fifo()


def test_a_regular_json_file_is_still_replaced_whole(tmp_path):
    out = tmp_path / "m.json"
    out.write_text("x" * 100_000)
    proc = cli("rayjoule.meters", "--sample-seconds", "0", "--no-gpu", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "chosen" in json.loads(out.read_text())
    assert not out.is_symlink() and list(tmp_path.iterdir()) == [out]


# -- the command's name ----------------------------------------------------------------------

@pytest.mark.parametrize("invoke, name", [
    (lambda *a: cli("rayjoule.run", *a), "python -m rayjoule.run"),
    (lambda *a: console_script("run", *a), "rayjoule run"),
])
def test_usage_and_error_lines_name_the_command_as_invoked(invoke, name):
    bad = invoke("--bogus")
    assert bad.returncode == 2
    assert bad.stderr.startswith(f"{name}: error: unrecognized arguments: --bogus")
    helped = invoke("--help")
    assert helped.returncode == 0 and helped.stdout.startswith(f"usage: {name} ")


# -- output into a pipe ----------------------------------------------------------------------

def test_run_into_a_pipe_fits_80_columns(tmp_path):
    proc = cli("rayjoule.run", "--workload", "pi", "--size", "1e5", "--tasks", "3",
               "--meter", "tdp", "--idle-seconds", "0", "--db", str(tmp_path / "r.sqlite"))
    assert proc.returncode == 0, proc.stderr
    assert "tasks by energy" in proc.stdout and "[meter tdp, modelled]" in proc.stdout
    assert_fits(proc.stdout)


def test_columns_sets_the_width_of_piped_output(tmp_path):
    env = {**env_without_columns(), "COLUMNS": "200"}
    proc = cli("rayjoule.run", "--workload", "pi", "--size", "1e5", "--tasks", "3",
               "--meter", "tdp", "--idle-seconds", "0", "--db", str(tmp_path / "r.sqlite"),
               env=env)
    assert proc.returncode == 0, proc.stderr
    assert max(map(len, proc.stdout.splitlines())) > 80
    assert_fits(proc.stdout, 200)


def test_tune_into_a_pipe_fits_80_columns_and_names_its_storage(tmp_path):
    db = tmp_path / "r.sqlite"
    proc = cli("rayjoule.tune", *QUICK_RUN, "--frameworks", "native", "--tasks", "1:4",
               "--trials", "2", "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("optuna storage (study "))
    assert lines[at + 1].strip().startswith("sqlite:///" + str(tmp_path.resolve()))
    assert_fits(proc.stdout)


def test_compare_into_a_pipe_fits_80_columns(tmp_path):
    proc = cli("rayjoule.compare", *QUICK_RUN, "--frameworks", "native", "--repeats", "2",
               "--tasks", "2", "--db", str(tmp_path / "r.sqlite"))
    assert proc.returncode == 0, proc.stderr
    assert "native" in proc.stdout
    assert_fits(proc.stdout)


# -- printed commands ------------------------------------------------------------------------

def test_the_keep_alive_stop_command_names_this_interpreter_and_runs(tmp_path):
    from types import SimpleNamespace

    from rayjoule.cluster.keepalive import stop_command

    node = SimpleNamespace(get_session_dir_path=lambda: str(tmp_path / "session_x"))
    ray = SimpleNamespace(_private=SimpleNamespace(worker=SimpleNamespace(
        global_worker=SimpleNamespace(node=node))))
    words = shlex.split(stop_command(ray))
    assert words[0] == sys.executable and os.path.isabs(words[0])
    assert words[-1] == str(tmp_path / "session_x")
    helped = subprocess.run([*words[:3], "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "--stop" in helped.stdout
