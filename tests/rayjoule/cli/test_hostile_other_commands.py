"""A hostile user's inputs to ``run``, ``compare``, ``history``, ``export``, ``workloads`` and
``meters`` that the BAD table (test_hardening.py) does not hold: each is one line on stderr
and exit status 2, found before any work, with every file in the folder byte-identical and
no file created (a new ``--db`` included); and the neighbouring inputs that are fine work."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from pathlib import Path

import pytest

from rayjoule.cli import compare, detect_meters, export, history, run, workloads
from rayjoule.cli.common import run_command
from tests.tests_support.refusals import assert_refused, snapshot

METER = ["--meter", "tdp", "--idle-seconds", "0"]
PI = ["--workload", "pi", "--size", "1e5", *METER]
COMMANDS = {"run": run.main, "compare": compare.main, "history": history.main,
            "export": export.main, "workloads": workloads.main, "meters": detect_meters.main}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    """A store with one finished native run of ``sleep``."""
    db = tmp_path_factory.mktemp("seeded") / "r.sqlite"
    assert run_command(run.main, ["--workload", "sleep", "--size", "0", "--tasks", "2",
                                  *METER, "--db", str(db)]) == 0
    return db


@pytest.fixture
def work(seeded, tmp_path) -> Path:
    """A folder of one's own with a copy of the store (r.sqlite) in it."""
    (tmp_path / "r.sqlite").write_bytes(seeded.read_bytes())
    return tmp_path


def call(command: str, argv: list[str]) -> int:
    try:
        return run_command(COMMANDS[command], argv)
    except SystemExit as exc:  # argparse's usage errors (the Parser prints its one line)
        return int(exc.code or 0)


def refused(command: str, argv: list[str], folder: Path, capsys, fragment: str) -> str:
    """Run; assert exit 2, one stderr line holding ``fragment``, the folder unchanged."""
    return assert_refused(lambda: call(command, argv), folder, capsys, fragment)


BAD = [
    # (command, arguments, fragment); {db} is the store r.sqlite, {new} a store not yet there
    # an output path that is the results store replaced the store with a JSON report
    ("run", [*PI, "--db", "{db}", "--json", "{db}"], "is the results store"),
    ("compare", [*PI, "--frameworks", "native", "--db", "{db}", "--json", "{db}"],
     "is the results store"),
    ("history", ["--db", "{db}", "--json", "{db}"], "is the results store"),
    ("export", ["--db", "{db}", "--out", "{dir}/out", "--json", "{db}"],
     "is the results store"),
    # a store named like one of export's files, in the --out folder, was overwritten
    ("export", ["--db", "{dir}/tasks.parquet", "--out", "{dir}"], "over the results store"),
    ("export", ["--db", "{dir}/runs.parquet.tmp", "--out", "{dir}"], "over the results store"),
    ("run", [*PI, "--db", "{dir}/out.json.tmp", "--json", "{dir}/out.json"],
     "its temporary file"),
    # ... and so was one named like the figure compare or history draws in its --plot folder
    ("compare", [*PI, "--frameworks", "native", "--db", "{dir}/compare_pi.png", "--plot",
                 "{dir}"], "is the results store"),
    ("history", ["--db", "{dir}/history_sleep_0_0.png", "--plot", "{dir}"],
     "is the results store"),
    # an empty output path was silently ignored (--json, --plot) or meant the working
    # folder (--out wrote three parquet files wherever the command ran)
    ("run", [*PI, "--db", "{db}", "--json", ""], "--json needs a file path"),
    ("compare", [*PI, "--frameworks", "native", "--db", "{db}", "--plot", ""],
     "--plot needs a folder path"),
    ("history", ["--db", "{db}", "--json", ""], "--json needs a file path"),
    ("history", ["--db", "{db}", "--plot", ""], "--plot needs a folder path"),
    ("export", ["--db", "{db}", "--out", ""], "--out needs a folder path"),
    ("export", ["--db", "{db}", "--out", "{dir}/out", "--json", ""], "--json needs a file"),
    ("workloads", ["pi", "--json", ""], "--json needs a file path"),
    ("meters", ["--cpu", "x", "--json", ""], "--json needs a file path"),
    # meters wrote its JSON after sampling, making any missing folders on the way
    ("meters", ["--cpu", "x", "--json", "{dir}/no/such/folder/m.json"], "does not exist"),
    # compare: frameworks named twice (or the same runs under two names), none at all
    ("compare", [*PI, "--frameworks", "native,native", "--db", "{new}"], "distinct"),
    ("compare", [*PI, "--frameworks", "ray,ray:tasks", "--db", "{new}"], "distinct"),
    ("compare", [*PI, "--frameworks", " , ", "--db", "{new}"], "names no framework"),
    ("compare", [*PI, "--frameworks", "native,lithops", "--mode", "actors", "--db", "{new}"],
     "applies to Ray only"),
    # compare --repeats 10**9 ran for hours, a run at a time, storing each
    ("compare", [*PI, "--frameworks", "native", "--repeats", "1000000000", "--db", "{new}"],
     "repeats of 1 framework(s) are estimated to take"),
    ("run", [*PI, "--repeats", "1000000000", "--db", "{new}"], "repeats are estimated"),
    # a size the run's own check refuses: found before the store is created
    ("compare", [*METER, "--workload", "pi", "--size", "1e15", "--frameworks", "native",
                 "--db", "{new}"], "--max-hours"),
    ("run", [*METER, "--workload", "pi", "--size", "1e15", "--db", "{new}"], "--max-hours"),
    # history: one store given twice was listed (and counted) twice, both named '#2'
    ("history", ["--db", "{db}", "--db", "{dir}/./r.sqlite"], "is the same store as"),
    # an empty run id fell through to the ranking of every job
    ("history", ["--db", "{db}", "--run", ""], "--run needs a run id"),
    ("history", ["--db", "{db}", "--run", "' OR 1=1 --"], "not found"),
    ("history", ["--db", "{db}", "--run", "ünï©ødé"], "not found"),
    ("history", ["--db", "{new}"], "not found"),
    ("history", ["--db", "{db}", "--db", ""], "--db needs a file path"),
    # workloads: a serial run had no --max-hours (pi at 1e15 ran for days)
    ("workloads", ["pi", "--size", "1e15"], "--max-hours"),
    ("workloads", ["pi", "--size", "1e5", "--max-hours", "inf"], "finite number > 0"),
    # meters --cpu: a model name is one short line (10 kB of text filled the screen)
    ("meters", ["--cpu", "x" * 10_000], "at most 200 characters"),
    ("meters", ["--cpu", "AMD\nEPYC"], "one line of printable text"),
    # a stage given twice silently took the last value
    ("run", [*METER, "--workload", "wordcount", "--size", "1000", "--tasks", "map=2,map=3",
             "--db", "{new}"], "gives stage 'map' twice"),
    ("compare", [*PI, "--frameworks", "native", "--num-cpus", "map=1,map=2", "--db", "{new}"],
     "twice"),
    # --config files: a misspelt table was ignored with its settings; a true/false where a
    # value goes was taken as 1 or failed with a traceback, a false choice went unchecked
    ("run", [*PI, "--db", "{new}", "--config", "{dir}/misspelt.toml"], "unknown table(s) runn"),
    ("compare", [*PI, "--frameworks", "native", "--db", "{new}", "--config",
                 "{dir}/json_true.toml"], "not true/false"),
    ("compare", [*PI, "--frameworks", "native", "--db", "{new}", "--config",
                 "{dir}/repeats_true.toml"], "not true/false"),
]


@pytest.mark.parametrize("command, argv, fragment", BAD,
                         ids=[f"{c} {' '.join(a)[:50]}" for c, a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_leaves_every_file_as_it_was(
        work, capsys, command, argv, fragment):
    fill = {"db": str(work / "r.sqlite"), "new": str(work / "new.sqlite"), "dir": str(work)}
    for name in ("tasks.parquet", "runs.parquet.tmp", "compare_pi.png", "out.json.tmp",
                 "history_sleep_0_0.png"):  # the store under the names of files written
        (work / name).write_bytes((work / "r.sqlite").read_bytes())
    (work / "misspelt.toml").write_text("[runn]\nrepeats = 3\n")
    (work / "json_true.toml").write_text("[compare]\njson = true\n")
    (work / "repeats_true.toml").write_text("[compare]\nrepeats = true\n")
    refused(command, [a.format(**fill) for a in argv], work, capsys, fragment)


@pytest.mark.parametrize("command", ["run", "compare"])
def test_a_store_the_command_created_is_removed_when_a_meter_refuses(
        work, capsys, monkeypatch, command):
    """A meter is checked once the session starts, after the store was created: bad input
    must still leave no file behind (an empty new store was left before); an existing store
    stays byte-identical."""
    empty = work / "powercap"
    empty.mkdir()
    monkeypatch.setenv("RAYJOULE_POWERCAP_ROOT", str(empty))
    args = ["--workload", "pi", "--size", "1e5", "--meter", "rapl", "--idle-seconds", "0"]
    args += ["--frameworks", "native"] if command == "compare" else []
    refused(command, [*args, "--db", str(work / "new.sqlite")], work, capsys, "rapl")
    refused(command, [*args, "--db", str(work / "r.sqlite")], work, capsys, "rapl")


def test_export_reads_a_store_another_process_is_writing(work, capsys):
    """Export only reads: it used to open the store for writing and, with a writer holding
    it, waited 30 s and failed (exit 1); now it exports what is committed."""
    db = work / "r.sqlite"
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as writer:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO meta VALUES ('held', 'by another writer')")
        code = call("export", ["--db", str(db), "--out", str(work / "out")])
        writer.execute("ROLLBACK")
    out = capsys.readouterr().out
    assert code == 0
    assert "runs" in out and (work / "out" / "runs.parquet").is_file()


def test_export_leaves_the_store_byte_identical_and_no_wal_beside_it(work, capsys):
    db = work / "r.sqlite"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    assert call("export", ["--db", str(db), "--out", str(work / "out")]) == 0
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()


def test_the_same_inputs_done_right_still_work(work, capsys):
    """The neighbours of the refused inputs: two distinct stores, a prefix-free run id,
    --json - and a short --cpu name."""
    db = work / "r.sqlite"
    other = work / "other.sqlite"
    other.write_bytes(db.read_bytes())
    assert call("history", ["--db", str(db), "--db", str(other), "--plot",
                            str(work / "plots")]) == 0  # a new --plot folder is made
    assert "counted once" in capsys.readouterr().out  # the copy's runs are the same runs
    assert list((work / "plots").glob("history_*.png"))
    assert call("meters", ["--cpu", "AMD EPYC 7R13 Processor", "--json", "-"]) == 0
    assert '"tdp_model"' in capsys.readouterr().out


def _as_version_1(db: Path) -> None:
    """Turn a store into one of rayjoule 0.1's schema (no overhead_j, complete, stage...)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript("""
            PRAGMA journal_mode=DELETE;
            CREATE TABLE runs_v1 AS SELECT run_id, parent_id, created, workload, framework,
                status, error, wall_s, total_j, static_j, dynamic_j, meter, kind, study,
                trial, config_json, result_json FROM runs;
            DROP TABLE runs; ALTER TABLE runs_v1 RENAME TO runs;
            CREATE TABLE tasks_v1 AS SELECT run_id, task_id, node_id, host, pid, start,
                "end", cpu_s, energy_j FROM tasks;
            DROP TABLE tasks; ALTER TABLE tasks_v1 RENAME TO tasks;
            UPDATE meta SET value = '1' WHERE key = 'schema_version';""")


@pytest.mark.parametrize("command", ["export", "history"])
def test_a_store_of_the_older_schema_is_read_and_never_upgraded_in_place(work, capsys,
                                                                          command):
    """export opened the store for writing and so upgraded the user's 0.1 store in place;
    read only it met the missing columns with a traceback. Now it exports an upgraded
    temporary copy; history reads it as it is."""
    db = work / "r.sqlite"
    _as_version_1(db)
    before = snapshot(work)
    argv = ["--db", str(db)] + (["--out", str(work / "out")] if command == "export" else [])
    assert call(command, argv) == 0, capsys.readouterr().err
    after = snapshot(work)
    assert after["r.sqlite"] == before["r.sqlite"] and "r.sqlite-wal" not in after
    if command == "export":
        import pyarrow.parquet as pq

        assert pq.read_table(work / "out" / "tasks.parquet").num_rows == 2
