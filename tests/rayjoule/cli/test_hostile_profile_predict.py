"""A hostile user's inputs to ``profile`` and ``predict`` (issue 24's commands): each is one
line on stderr and exit status 2, found before any work, with the store byte-identical and
no file created; and the inputs next to them that are fine still run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rayjoule.cli import predict, profile
from rayjoule.cli.common import run_command
from tests.tests_support.refusals import assert_refused, snapshot

METER = ["--meter", "tdp", "--idle-seconds", "0"]
PI = ["--workload", "pi", "--size", "200000", "--framework", "native", "--concurrency", "2"]


@pytest.fixture(scope="module")
def profiled(tmp_path_factory) -> Path:
    """A store with pi profiled natively at tiny sizes, and its flexecutor export beside it."""
    d = tmp_path_factory.mktemp("profiled")
    db = d / "r.sqlite"
    assert profile.main([*PI, *METER, "--db", str(db)]) == 0
    assert profile.main(["--export-flexecutor", str(d / "pi.json"), "--workload", "pi",
                         "--db", str(db)]) == 0
    return d


@pytest.fixture
def work(profiled, tmp_path) -> Path:
    """A folder of one's own: a copy of the store and of the export (with its sidecar)."""
    for name in ("r.sqlite", "pi.json", "pi.json.meta.json"):
        shutil.copy(profiled / name, tmp_path / name)
    return tmp_path


def refused(command, argv: list[str], folder: Path, capsys, fragment: str) -> str:
    """Run; assert exit 2, one stderr line holding ``fragment``, the folder unchanged."""
    return assert_refused(lambda: run_command(command, argv), folder, capsys, fragment)


# -- predict ---------------------------------------------------------------------------------
PREDICT_BAD = [
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--samples", "1000000000"], "--samples must be 100 to 1000000"),
    (["--samples", "99"], "--samples must be 100 to"),
    (["--size", "inf"], "--size must be > 0 and finite"),
    (["--size", "nan"], "--size must be > 0 and finite"),
    (["--max-seconds", "inf"], "--max-seconds must be > 0 and finite"),
    (["--max-seconds", "0"], "--max-seconds must be > 0 and finite"),
    (["--at", "tasks=2,tasks=4"], "gives tasks twice"),
    (["--at", "map.tasks=2,map.tasks=3"], "gives map.tasks twice"),
    (["--at", ".tasks=2"], "--at expects [STAGE.]tasks=N"),
    (["--at", "tasks=2,num_cpus=inf"], "num_cpus must be a finite number"),
    (["--at", "tasks=2,memory=inf"], "memory must be a finite number"),
    (["--at", "tasks=nan"], "tasks must be a whole number"),
    (["--at", "tasks=2.5"], "tasks must be a whole number"),
    (["--at", "tasks=0"], "tasks must be >= 1"),
    (["--at", "foo.tasks=2"], "unknown stage 'foo'"),
    (["--at", ""], "--at expects"),
    (["--json", "{db}"], "is the results store"),
]


@pytest.mark.parametrize("extra, fragment", PREDICT_BAD)
def test_predict_refuses_bad_input_before_any_work(work, capsys, extra, fragment):
    db = work / "r.sqlite"
    argv = ["--workload", "pi", "--size", "1e5", "--db", str(db),
            *[a.replace("{db}", str(db)) for a in extra]]
    refused(predict.main, argv, work, capsys, fragment)


def test_predict_takes_tasks_in_exponent_form_and_warns_on_memory_it_ignores(work, capsys):
    """1e3 tasks is a whole number; memory on profiles that never varied it is a warning."""
    db = work / "r.sqlite"
    before = snapshot(work)
    code = run_command(predict.main, ["--workload", "pi", "--size", "1e5", "--db", str(db),
                                      "--at", "tasks=1e3,memory=1024"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "tasks=1000 is outside the profiled range" in " ".join(out.split())
    assert len(err.strip().splitlines()) == 1 and "ignored" in err
    assert snapshot(work) == before


# -- profile: runs ---------------------------------------------------------------------------
PROFILE_BAD = [
    # a later point of the design would be refused by the run's own check: found up front
    (["--sizes", "1e5,1e300"], "is estimated to run"),
    (["--task-counts", "1,2,4,8,1000000000"], "use fewer tasks"),
    # the design as a whole: 4 × 10**9 runs
    (["--repeats", "1000000000"], "runs are estimated to take"),
    (["--anchor-repeats", "1000000000"], "runs are estimated to take"),
    # native concurrency is processes on this machine (it once forked past load 900)
    (["--concurrency", "100000"], "concurrency 100000 on native"),
    (["--json", "{db}"], "is the results store"),
    (["--export-flexecutor", ""], "--export-flexecutor needs a file path"),
    (["--import-flexecutor", ""], "--import-flexecutor needs a file path"),
    (["--stage", ""], "--stage only goes with"),
]


@pytest.mark.parametrize("extra, fragment", PROFILE_BAD)
def test_profile_refuses_a_design_that_would_fail_midway(work, capsys, extra, fragment):
    db = work / "r.sqlite"
    refused(profile.main, [*PI, *METER, "--db", str(db),
                           *[a.replace("{db}", str(db)) for a in extra]], work, capsys, fragment)


def test_an_absurd_estimate_is_a_short_line(work, capsys):
    """The estimated hours of a huge size in three significant digits, not 150 of them."""
    err = refused(profile.main, [*PI, *METER, "--db", str(work / "r.sqlite"), "--sizes",
                                 "1e5,1e300"], work, capsys, "is estimated to run")
    assert len(err) < 400, err


# -- profile --import-flexecutor ---------------------------------------------------------------
def _entry(**steps) -> dict:
    return {"read": [[0.1, 0.1]], "compute": [[1.0, 1.0]], "write": [[0.1, 0.1]],
            "cold_start": [[0.0, 0.0]], **steps}


GOOD_ENTRY = json.dumps(_entry())
IMPORT_BAD = [
    # (file text, sidecar text or None, fragment)
    ('{"(1, 0, 2)": {"read": [[1' + "0" * 5000 + ", 1]]}}", None, "is not JSON"),
    ("[" * 100_000 + "]" * 100_000, None, "nested too deeply"),
    (f'{{"(1, 0, 2)": {GOOD_ENTRY}, "(1, 0, 2)": {GOOD_ENTRY}}}', None, "appears twice"),
    (json.dumps({"(1, 0, 2)": _entry(compute=[[1e308, 1e308]])}), None,
     "sums past the largest float"),
    (GOOD_ENTRY.join(['{"(1, 0, 2)": ', "}"]),
     json.dumps({"meter": {"name": "rapl", "kind": "measured"},
                 "overhead_j": {"(9, 9, 9)": [1.0]}}), "which the file does not have"),
    (GOOD_ENTRY.join(['{"(1, 0, 2)": ', "}"]),
     json.dumps({"meter": {"name": "rapl", "kind": "measured"},
                 "overhead_j": {"(1, 0, 2)": [1.0, 1.0]}}), "has 2 repetitions, the file 1"),
    (GOOD_ENTRY.join(['{"(1, 0, 2)": ', "}"]), "FOLDER", "is not a file"),
    (GOOD_ENTRY.join(['{"(1, 0, 2)": ', "}"]),
     json.dumps({"meter": {"name": "rapl", "kind": "banana"}}), "meter kind must be"),
]


@pytest.mark.parametrize("text, sidecar, fragment", IMPORT_BAD)
def test_a_hostile_flexecutor_file_is_one_line_and_stores_nothing(work, capsys, text, sidecar,
                                                                   fragment):
    src = work / "in" / "f.json"
    src.parent.mkdir()
    src.write_text(text)
    meta = src.with_name("f.json.meta.json")
    if sidecar == "FOLDER":
        meta.mkdir()
    elif sidecar is not None:
        meta.write_text(sidecar)
    refused(profile.main, ["--import-flexecutor", str(src), "--workload", "w", "--stage", "map",
                           "--db", str(work / "r.sqlite")], work, capsys, fragment)


@pytest.mark.parametrize("extra", [["--repeats", "3"], ["--anchor-repeats", "3"],
                                   ["--seed", "3"], ["--param", "a=b"], ["--meter", "rapl"],
                                   ["--concurrency", "2"]])
def test_run_only_flags_do_not_go_with_an_import(work, capsys, extra):
    refused(profile.main, ["--import-flexecutor", str(work / "pi.json"), "--workload", "w",
                           "--stage", "map", "--db", str(work / "r.sqlite"), *extra], work,
            capsys, f"{extra[0]} does not go with --import-flexecutor")


def test_the_export_imports_back_after_the_checks(work, capsys):
    """The sidecar the export wrote passes the sidecar checks (the same keys, as many
    repetitions): the import stores its profiles with energy."""
    code = run_command(profile.main, ["--import-flexecutor", str(work / "pi.json"),
                                      "--workload", "w", "--stage", "map",
                                      "--db", str(work / "r.sqlite")])
    out = capsys.readouterr().out
    assert code == 0 and "with energy" in out


# -- profile --export-flexecutor ---------------------------------------------------------------
EXPORT_BAD = [
    (["--export-flexecutor", "{db}"], "is the results store"),
    (["--export-flexecutor", "{work}/o.json", "--json", "{work}/o.json"],
     "is the export or its sidecar"),
    (["--export-flexecutor", "{work}/o.json", "--json", "{work}/o.json.meta.json"],
     "is the export or its sidecar"),
    (["--export-flexecutor", "{work}/o.json", "--repeats", "5"],
     "--repeats does not go with --export-flexecutor"),
    (["--export-flexecutor", "{work}/o.json", "--size", "inf"], "--size must be > 0 and finite"),
]


@pytest.mark.parametrize("extra, fragment", EXPORT_BAD)
def test_an_export_never_writes_over_the_store_or_itself(work, capsys, extra, fragment):
    db = work / "r.sqlite"
    argv = ["--workload", "pi", "--db", str(db),
            *[a.replace("{db}", str(db)).replace("{work}", str(work)) for a in extra]]
    refused(profile.main, argv, work, capsys, fragment)


@pytest.mark.parametrize("argv", [
    ["predict", "--workload", "pi", "--size", "1e5"],
    ["profile", "--export-flexecutor", "{work}/o.json", "--workload", "pi"],
])
def test_reading_commands_leave_a_file_that_is_no_store_as_it_was(work, capsys, argv):
    """predict and the export only read: an empty file given as --db stays empty (opening
    it as a store for writing made it one), and a store's own bytes never change."""
    empty = work / "empty.sqlite"
    empty.write_bytes(b"")
    command = predict.main if argv[0] == "predict" else profile.main
    rest = [a.replace("{work}", str(work)) for a in argv[1:]]
    refused(command, [*rest, "--db", str(empty)], work, capsys, "not a rayjoule results store")
    assert empty.read_bytes() == b""
