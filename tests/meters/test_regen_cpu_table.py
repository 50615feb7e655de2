"""``python -m meters.regen_cpu_table``: the shipped table is reproducible from its sources."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from meters import load_cpu_table
from meters._cpu_table import DEFAULT_TABLE
from meters.regen_cpu_table import RAYJOULE_ROWS, build_rows, main, render_csv

ROOT = Path(__file__).resolve().parents[2]
VENDORED = Path(__file__).with_name("data") / "codecarbon_cpu_power_3.3.2.csv"


def test_the_shipped_table_is_rebuilt_byte_for_byte_from_codecarbon_332() -> None:
    rows, report = build_rows(VENDORED, "3.3.2")
    assert render_csv(rows) == DEFAULT_TABLE.read_text(encoding="utf-8")
    assert report.codecarbon_rows == 4918 and report.kept > 4000
    proc = subprocess.run(
        [sys.executable, "-m", "meters.regen_cpu_table", "--from", str(VENDORED),
         "--codecarbon-version", "3.3.2", "--check"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "up to date" in proc.stdout


def test_every_row_says_where_it_came_from() -> None:
    with open(RAYJOULE_ROWS, newline="", encoding="utf-8") as f:
        own = {r["model"] for r in csv.DictReader(f) if r["tdp_w"].strip()}
    for row in load_cpu_table():
        if row.model in own:
            assert "https://" in row.source, row
        else:
            assert row.source.startswith(("CodeCarbon 3.3.2 ", "TDP: CodeCarbon 3.3.2 ")), row
            assert repr(row.model) in row.source, row


def test_rayjoule_rows_override_codecarbon_and_note_its_figure() -> None:
    rows = {r.model: r for r in load_cpu_table()}
    assert "Intel Xeon Platinum 8259CL" not in rows  # CodeCarbon's row is replaced
    own = rows["Xeon Platinum 8259CL"]
    assert (own.tdp_w, own.cores, own.threads) == (165, 24, 48)
    assert "lists 210 W" in own.source


def _cc(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cc.csv"
    path.write_text("Name,TDP\n" + text)
    return path


def _own(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "own.csv"
    path.write_text("model,tdp_w,cores,threads,source\n" + text)
    return path


def test_the_merge_rule(tmp_path: Path) -> None:
    cc = _cc(tmp_path, "Intel Xeon E5-2686 v4,145\nIntel Xeon E5-2686 v4,145\n"
                       "AMD EPYC 7763,280\n4334,95\nIntel Celeron 1200,29.32.9\n"
                       "Intel Core i5-8250U,15\nIntel Core i5-8250U,25\nFX-8350,125\n")
    own = _own(tmp_path, "EPYC 7763,280,64,128,https://amd.example/7763\n"
                         "Xeon E5-2686 v4,,18,36,https://ark.example/2686\n")
    rows, report = build_rows(cc, "9.9", own)
    by_model = [(r["model"], r["tdp_w"], r["threads"]) for r in rows]
    assert by_model == [("EPYC 7763", "280", "128"),
                        ("Intel Xeon E5-2686 v4", "145", "36"),
                        ("Intel Core i5-8250U", "15", ""), ("Intel Core i5-8250U", "25", ""),
                        ("FX-8350", "125", "")]
    assert rows[1]["source"] == ("TDP: CodeCarbon 9.9 data/hardware/cpu_power.csv (MIT): "
                                 "'Intel Xeon E5-2686 v4'; cores/threads: https://ark.example/2686")
    assert rows[-1]["vendor"] == "amd"
    assert (report.duplicates, report.overridden, report.no_key, report.bad_tdp) == \
        (1, 1, ["4334"], ["Intel Celeron 1200"])


def test_threads_without_a_codecarbon_tdp_are_an_error(tmp_path: Path) -> None:
    own = _own(tmp_path, "Core i9-99999K,,24,32,https://ark.example\n")
    with pytest.raises(ValueError, match="intel core i9-99999k"):
        build_rows(_cc(tmp_path, "AMD EPYC 7763,280\n"), "9.9", own)


@pytest.mark.parametrize("args", [["--from", "x.csv"],
                                  ["--from", "/nonexistent.csv", "--codecarbon-version", "1"]])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "table.csv"
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("regen_cpu_table: ")
    assert not out.exists()


def test_writes_the_table_it_was_asked_for(tmp_path: Path) -> None:
    out = tmp_path / "table.csv"
    cc = _cc(tmp_path, "AMD EPYC 7663,240\n")
    assert main(["--from", str(cc), "--codecarbon-version", "9.9",
                 "--rayjoule-rows", str(_own(tmp_path, "")), "--out", str(out)]) == 0
    assert [r.model for r in load_cpu_table(out)] == ["AMD EPYC 7663"]
    assert main(["--from", str(cc), "--codecarbon-version", "9.8",
                 "--rayjoule-rows", str(_own(tmp_path, "")), "--out", str(out),
                 "--check"]) == 1
