"""``python -m rayjoule.history``: hosts ranked across stores, a run against its history.

The stores are built the way runs build them (Store.begin/finish with RunResults from
faked hosts), then only read: every test that runs the command checks they are unchanged.
"""

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from rayjoule.core.errors import ConfigError
from rayjoule.core.result import Energy, HostEnergy, MeterLabel, RunResult, combine_repeats
from rayjoule.runs import reports as hist
from rayjoule.runs.store import Store

MACHINES = {
    "alpha:b001": {"hostname": "alpha", "cpu_model": "Intel Xeon Gold 6230", "vcpus": 40},
    "alpha:b002": {"hostname": "alpha", "cpu_model": "Intel Xeon Gold 6230", "vcpus": 40},
    "gamma:c003": {"hostname": "gamma", "cpu_model": "AMD EPYC 7763", "vcpus": 128},
    "beta:a009": {"hostname": "beta", "cpu_model": "AMD EPYC", "vcpus": 2},
}
BASES = {"rapl": {"kind": "measured", "domains": ["package-0"]},
         "tdp": {"kind": "modelled", "basis": "fallback"}}


def result(run_id, host, meter, total, wall, *, tasks=2, size=1000, workload="pi",
           framework="native", complete=True, described=True, basis=None):
    kind = BASES[meter]["kind"]
    config = {"workload": workload, "size": size, "seed": 0, "params": {},
              "framework": framework, "tasks": tasks, "concurrency": 4, "num_cpus": 1.0,
              "mode": "tasks"}
    info = {"machine": MACHINES[host], "meters": {meter: {**BASES[meter], **(basis or {})}}}
    energy = Energy(total, 1.0, total - 1.0, {"cpu": total})
    return RunResult(run_id=run_id, workload=workload, framework=framework, config=config,
                     wall_s=wall, energy=energy, meter=MeterLabel(meter, kind), tasks=[],
                     summary={}, hosts=[HostEnergy(host, MeterLabel(meter, kind), energy, 1.0,
                                                   "test", complete=complete,
                                                   info=info if described else {})])


def write(path, results, failed=(), parent=None):
    """Store results in order, each created one second after the last (no clock races)."""
    with Store(path) as store:
        for r in results:
            store.begin(r.run_id, workload=r.workload, framework=r.framework,
                        config=r.config, parent_id=parent)
            store.finish(r)
        for run_id in failed:
            store.begin(run_id, workload="pi", framework="native", config={"size": 1000})
            store.fail(run_id, "boom")
    db = sqlite3.connect(path)
    for i, r in enumerate([*results, *({"run_id": f} for f in failed)]):
        run_id = r["run_id"] if isinstance(r, dict) else r.run_id
        db.execute("UPDATE runs SET created=? WHERE run_id=?", (1_000_000.0 + i, run_id))
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path


@pytest.fixture
def stores(tmp_path):
    """Store a: two measured hosts (rapl); store b: one modelled host (tdp), cheapest of all."""
    a = write(tmp_path / "a.sqlite", [
        result("a1", "alpha:b001", "rapl", 12.0, 3.0, tasks=1),
        result("a2", "alpha:b001", "rapl", 9.0, 2.0, tasks=2),
        result("a3", "gamma:c003", "rapl", 15.0, 1.0, tasks=8),
        result("a4", "alpha:b001", "rapl", 30.0, 9.0, size=2000),
    ], failed=["a5"])
    b = write(tmp_path / "b.sqlite", [
        result("b1", "beta:a009", "tdp", 5.0, 4.0, tasks=1),
        result("b2", "beta:a009", "tdp", 7.0, 3.0, tasks=2),
        result("b3", "alpha:b001", "rapl", 1.0, 0.5, complete=False),
    ])
    return a, b


def snapshot(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())
            if p.suffix != ".json" and p.is_file()}


def cli(*args):
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # a pipe: 80 columns
    return subprocess.run([sys.executable, "-m", "rayjoule.history", *map(str, args)],
                          capture_output=True, text=True, timeout=120, env=env)


# -- ranking ------------------------------------------------------------------------
def test_hosts_of_two_stores_are_ranked_with_measured_and_modelled_apart(stores):
    (job,) = hist.rank_hosts(hist.load(stores), "pi", "1e3")
    d = job.to_dict()
    measured, modelled = d["measured"], d["modelled"]
    # the modelled host is the cheapest figure overall, yet it is not in the measured ranking
    assert [(h["rank"], h["hosts"][0]["host"], h["total_j"]) for h in measured] == \
        [(1, "alpha:b001", 9.0), (2, "gamma:c003", 15.0)]
    assert [(h["rank"], h["hosts"][0]["host"], h["total_j"]) for h in modelled] == \
        [(1, "beta:a009", 5.0)]
    best = measured[0]
    assert best["settings"] == {"framework": "native", "mode": "tasks", "tasks": 2,
                                "concurrency": 4, "num_cpus": 1.0}
    assert best["runs"] == 2 and best["run_id"] == "a2" and best["store"] == str(stores[0])
    assert best["hosts"][0]["cpu_model"] == "Intel Xeon Gold 6230"
    assert best["hosts"][0]["vcpus"] == 40 and best["hosts"][0]["model"] is None
    assert measured[1]["vs_best"] == pytest.approx(15.0 / 9.0)
    assert modelled[0]["kind"] == "modelled" and modelled[0]["hosts"][0]["model"] == \
        "tdp fallback"
    assert d["note"] == hist.MODELLED_NOTE
    # the failed run and the run whose host was lost mid-run are counted, not ranked
    assert d["runs"] == 5 and d["skipped"] == {"not_ok": 1, "incomplete": 1}


def test_without_a_size_each_size_is_its_own_job(stores):
    jobs = hist.rank_hosts(hist.load(stores), "pi")
    assert [(j.size, j.runs) for j in jobs] == [(1000, 5), (2000, 1)]
    assert jobs[1].to_dict()["note"] is None  # measured only: nothing to warn about


def test_two_model_bases_on_one_host_are_two_estimates_not_one_best(tmp_path):
    db = write(tmp_path / "m.sqlite", [
        result("m1", "beta:a009", "tdp", 5.0, 1.0),
        result("m2", "beta:a009", "tdp", 50.0, 1.0, basis={"basis": "override", "tdp_w": 100}),
    ])
    (job,) = hist.rank_hosts(hist.load([db]), "pi")
    assert [h.best.models for h in job.ranked["modelled"]] == \
        [("tdp fallback",), ("tdp override 100 W",)]


def test_by_machine_joins_one_machine_across_reboots(tmp_path):
    db = write(tmp_path / "r.sqlite", [result("r1", "alpha:b001", "rapl", 9.0, 1.0),
                                       result("r2", "alpha:b002", "rapl", 8.0, 1.0)])
    history = hist.load([db])
    (by_host,) = hist.rank_hosts(history, "pi")
    (by_machine,) = hist.rank_hosts(history, "pi", by="machine")
    assert len(by_host.ranked["measured"]) == 2
    assert [(h.runs, h.best.run_id) for h in by_machine.ranked["measured"]] == [(2, "r2")]


def test_repeats_count_once_and_older_runs_without_a_description_still_rank(tmp_path):
    reps = [result(f"c{i}", "gamma:c003", "rapl", t, 1.0, described=False)
            for i, t in enumerate((10.0, 20.0, 30.0))]
    db = tmp_path / "rep.sqlite"
    write(db, reps, parent="combined")
    with Store(db) as store:
        store.begin("combined", workload="pi", framework="native", config=reps[0].config)
        store.finish(combine_repeats("combined", reps))
    (job,) = hist.rank_hosts(hist.load([db]), "pi")
    (host,) = job.ranked["measured"]
    assert job.runs == 3 and host.runs == 3 and host.best.run_id == "c0"
    assert host.best.hosts[0].cpu_model is None and host.best.hosts[0].hostname is None


def test_a_run_in_two_stores_counts_once(stores, tmp_path):
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(stores[1].read_bytes())
    history = hist.load([*stores, copy])
    assert history.duplicates == 3 and len(history.runs) == 8


def test_a_store_with_a_live_writer_is_read_with_its_wal(tmp_path):
    db = tmp_path / "live.sqlite"
    with Store(db) as store:
        r = result("w1", "beta:a009", "tdp", 3.0, 1.0)
        store.begin("w1", workload="pi", framework="native", config=r.config)
        store.finish(r)
        assert (tmp_path / "live.sqlite-wal").exists()
        assert [x.run_id for x in hist.load([db]).runs] == ["w1"]


@pytest.mark.parametrize("query, message", [
    ({"workload": "sort"}, "no runs of workload 'sort'.*workloads there: pi"),
    ({"workload": "pi", "size": 5}, "sizes there: 1000, 2000"),
])
def test_a_query_that_matches_nothing_says_what_is_there(stores, query, message):
    with pytest.raises(ConfigError, match=message):
        hist.rank_hosts(hist.load(stores), **query)


def test_a_job_with_only_failed_or_incomplete_runs_is_not_an_empty_ranking(tmp_path):
    db = write(tmp_path / "f.sqlite", [result("i", "beta:a009", "tdp", 1.0, 1.0,
                                              complete=False)], failed=["f"])
    with pytest.raises(ConfigError, match="no ok, complete runs of 'pi'"):
        hist.rank_hosts(hist.load([db]), "pi")
    with pytest.raises(ConfigError, match="no runs in"):
        hist.rank_hosts(hist.load([write(tmp_path / "empty.sqlite", [])]))


# -- a run against its history --------------------------------------------------------------
@pytest.fixture
def series(tmp_path):
    """alpha: 8 and 12 J with tasks 2, 20 J with tasks 4, a modelled run, then 15 J (the
    run under test), then a later run that must not count."""
    return write(tmp_path / "s.sqlite", [
        result("e1", "alpha:b001", "rapl", 8.0, 4.0),
        result("e2", "alpha:b001", "rapl", 12.0, 6.0),
        result("e3", "gamma:c003", "rapl", 20.0, 1.0, tasks=4),
        result("e4", "beta:a009", "tdp", 1.0, 1.0),
        result("new", "alpha:b001", "rapl", 15.0, 3.0),
        result("later", "alpha:b001", "rapl", 100.0, 100.0),
    ])


def test_a_new_run_is_compared_with_the_median_of_earlier_comparable_runs(series):
    c = hist.compare_run(hist.load([series]), "new").to_dict()
    same = c["same_settings"]
    assert same["runs"] == 2 and same["total_j"]["median"] == 10.0
    assert same["ratio_total_j"] == pytest.approx(1.5)
    assert same["ratio_wall_s"] == pytest.approx(3.0 / 5.0)
    assert (same["total_j"]["min"], same["total_j"]["max"]) == (8.0, 12.0)
    assert same["comparable"] and same["left_out"] == 1 and "left out" in same["caveat"]
    any_settings = c["same_job"]
    assert any_settings["runs"] == 3 and any_settings["hosts"] == 2
    assert any_settings["ratio_total_j"] == pytest.approx(15.0 / 12.0)
    assert c["same_host"]["runs"] == 2 and c["same_host"]["hosts"] == 1


def test_a_run_with_only_other_kind_history_is_compared_with_a_caveat(tmp_path):
    db = write(tmp_path / "k.sqlite", [result("m", "alpha:b001", "tdp", 4.0, 1.0),
                                       result("new", "alpha:b001", "rapl", 8.0, 1.0)])
    b = hist.compare_run(hist.load([db]), "new").same_settings
    assert b.runs == 1 and not b.comparable and b.ratio_total_j == pytest.approx(2.0)
    assert "not comparable" in b.caveat and "modelled" in b.caveat


def test_the_first_run_of_a_job_has_no_baseline(series):
    c = hist.compare_run(hist.load([series]), "e1")
    assert c.same_job.runs == 0 and c.same_job.ratio_total_j is None


# -- the command --------------------------------------------------------------------------
def test_command_ranks_prints_writes_json_and_plot_and_leaves_stores_untouched(stores,
                                                                               tmp_path):
    before = snapshot(tmp_path)
    out, plots = tmp_path / "h.json", tmp_path / "plots"
    proc = cli("--db", stores[0], "--db", stores[1], "--workload", "pi", "--size", "1000",
               "--json", out, "--plot", plots)
    assert proc.returncode == 0, proc.stderr
    assert snapshot(tmp_path) == before  # same files, bytes and mtimes: nothing written
    # a pipe gets 80 columns (COLUMNS unset): long lines fold at words, unbroken tokens
    # (paths) may overrun; the words are all there
    assert all(len(line) <= 80 or " " not in line.strip() for line in proc.stdout.splitlines())
    text = " ".join(proc.stdout.split())
    assert "measured — ranked by best total joules" in text
    assert "modelled estimates — ranked separately" in text and hist.MODELLED_NOTE in text
    assert "Intel Xeon Gold 6230, 40 vCPUs" in text
    data = json.loads(out.read_text())
    assert set(data) == {"stores", "duplicates", "by", "jobs"}
    (job,) = data["jobs"]
    assert set(job) == {"workload", "size", "params", "runs", "skipped", "measured",
                        "modelled", "note"}
    assert set(job["measured"][0]) == {"rank", "kind", "meter", "hosts", "runs", "total_j",
                                       "wall_s", "vs_best", "settings", "run_id", "store",
                                       "created"}
    (png,) = plots.iterdir()
    assert png.name == "history_pi_1000.png" and png.read_bytes()[:4] == b"\x89PNG"


def test_command_compares_a_run(series, tmp_path):
    before = snapshot(tmp_path)
    out = tmp_path / "run.json"
    proc = cli("--db", series, "--run", "new", "--json", out)
    assert proc.returncode == 0, proc.stderr
    assert snapshot(tmp_path) == before
    assert "1.50×" in proc.stdout and "left out" in proc.stdout
    data = json.loads(out.read_text())
    assert set(data["comparison"]) == {"run", "same_host", "same_settings", "same_job"}
    assert data["comparison"]["same_settings"]["ratio_total_j"] == pytest.approx(1.5)


def test_bad_input_is_one_line_and_exit_2_and_foreign_files_stay_untouched(stores, tmp_path):
    foreign = tmp_path / "optuna.sqlite"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE studies (id INTEGER)")
    db.commit()
    db.close()
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not sqlite at all" * 64)
    before = snapshot(tmp_path)
    cases = [
        (["--db", tmp_path / "missing.sqlite"], "results store not found"),
        (["--db", tmp_path], "not a file"),
        (["--db", foreign], "not a rayjoule results store (tables: studies)"),
        (["--db", junk], "not a usable rayjoule results store"),
        (["--db", stores[0], "--run", "nope"], "run 'nope' not found"),
        (["--db", stores[0], "--run", "a5"], "run a5 is failed"),
        (["--db", stores[0], "--workload", "sort"], "no runs of workload 'sort'"),
        (["--db", stores[0], "--size", "1000"], "--size needs --workload"),
        (["--db", stores[0], "--workload", "pi", "--run", "a1"], "not allowed with"),
        (["--db", stores[0], "--json", tmp_path], "is a folder"),
    ]
    for args, message in cases:
        proc = cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert snapshot(tmp_path) == before
