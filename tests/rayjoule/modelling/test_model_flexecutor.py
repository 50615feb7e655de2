"""flexecutor's profiling JSON: read, written back, and refused in one line when malformed."""

from __future__ import annotations

import ast
import gzip
import json
import statistics
from pathlib import Path

import pytest

from rayjoule.cli import profile
from rayjoule.cli.common import run_command
from rayjoule.core.errors import ConfigError
from rayjoule.modelling import fit_stage, parse_flexecutor, to_flexecutor_json

#: flexecutor's own files, as its repositories hold them (README.md there: source, commit)
UPSTREAM = Path(__file__).parents[2] / "data" / "flexecutor"

#: a small file in flexecutor's layout (DAGExecutor.profile → save_profiling_results)
FLEX = {
    "(1, 1024, 2)": {
        "read": [[0.5, 0.7], [0.4, 0.6]],
        "compute": [[4.0, 4.2], [4.1, 3.9]],
        "write": [[0.2, 0.2], [0.3, 0.1]],
        "cold_start": [[2.4, 2.5], [2.6, 2.7]],
    },
    "(2, 2048, 4)": {
        "read": [[0.3, 0.3, 0.2, 0.2]],
        "compute": [[1.1, 1.0, 1.2, 1.1]],
        "write": [[0.1, 0.1, 0.2, 0.2]],
        "cold_start": [[2.5, 2.4, 2.6, 2.5]],
    },
}


def test_flexecutor_profiles_map_onto_settings():
    profiles = parse_flexecutor(FLEX, "wordcount", "count")
    assert len(profiles) == 3
    first = profiles[0]
    assert (first.tasks, first.num_cpus, first.memory_mb, first.size) == (2, 1.0, 1024.0, 1.0)
    assert first.wall_s == pytest.approx((4.7 + 5.1) / 2)
    assert first.cold_start_s == pytest.approx(2.45)
    assert first.total_j is None and first.source == "flexecutor"
    assert profiles[2].tasks == 4 and profiles[2].num_cpus == 2.0


def test_flexecutor_json_round_trips(tmp_path):
    profiles = parse_flexecutor(FLEX, "wordcount", "count", size=3.0)
    path = tmp_path / "count.json"
    path.write_text(json.dumps(to_flexecutor_json(profiles), indent=4))
    again = parse_flexecutor(json.loads(path.read_text()), "wordcount", "count", size=3.0)
    assert [(p.setting, p.memory_mb, p.cold_start_s, p.run_id) for p in again] == \
        [(p.setting, p.memory_mb, p.cold_start_s, p.run_id) for p in profiles]
    assert [p.wall_s for p in again] == pytest.approx([p.wall_s for p in profiles])


def test_older_key_and_record_layouts_read_too():
    columns = {"(1, 512, 1)": {"read": [[1.0]], "compute": [[2.0]], "write": [[0.5]],
                               "cold_start_time": [[0.25]]}}
    records = {"(1, 512, 1)": [[{"read": 1.0, "compute": 2.0, "write": 0.5,
                                 "cold_start_time": 0.25}]]}
    a, = parse_flexecutor(columns, "w", "s")
    b, = parse_flexecutor(records, "w", "s")
    assert (a.wall_s, a.cold_start_s) == (b.wall_s, b.cold_start_s) == (3.5, 0.25)


def _upstream(name: str, tmp_path: Path) -> tuple[Path, object]:
    """One of flexecutor's files as a plain JSON file, and its parsed content."""
    src = UPSTREAM / name
    if name.endswith(".gz"):
        plain = tmp_path / name.removesuffix(".gz")
        plain.write_bytes(gzip.decompress(src.read_bytes()))
        src = plain
    return src, json.loads(src.read_text())


def _by_hand(data) -> dict[tuple, list[tuple[float, float]]]:
    """Per (cpu, memory, workers), per repetition: the mean over the workers listed of
    read + compute + write, and their mean cold start — read off the file, whatever its
    layout, without rayjoule."""
    if isinstance(data, list):  # the first prototype: {config, execution_results} records
        merged: dict[str, list] = {}
        for record in data:
            merged.setdefault(str(tuple(record["config"])), []).extend(
                record["execution_results"])
        data = merged
    out = {}
    for key, entry in data.items():
        if isinstance(entry, dict):
            cold = entry.get("cold_start", entry.get("cold_start_time"))
            reps = [[{"t": r + c + w, "cold": s} for r, c, w, s in zip(*rep, strict=True)]
                    for rep in zip(entry["read"], entry["compute"], entry["write"], cold,
                                   strict=True)]
        else:
            reps = [[{"t": x["read"] + x["compute"] + x["write"], "cold": x["cold_start_time"]}
                     for x in rep] for rep in entry]
        out[ast.literal_eval(key)] = [(statistics.fmean(x["t"] for x in rep),
                                       statistics.fmean(x["cold"] for x in rep))
                                      for rep in reps]
    return out


def _import(src: Path, tmp_path: Path, capsys) -> tuple[dict, str]:
    out = tmp_path / "import.json"
    assert profile.main(["--import-flexecutor", str(src), "--workload", "w", "--stage", "s",
                         "--db", str(tmp_path / "r.sqlite"), "--json", str(out)]) == 0
    return json.loads(out.read_text()), capsys.readouterr().out


@pytest.mark.parametrize("name", ["wordcount_db0c6c2.json", "wordcount_206fb3a.json",
                                  "wordcount_records_5b62a3e.json", "prototype_9324b34.json",
                                  "fork_mini_map.json", "fork_mini_reduce.json",
                                  "fork_titanic_512Mb_arm.json.gz"])
def test_flexecutors_own_files_import_value_for_value(name, tmp_path, capsys):
    """Every layout flexecutor (and its energy fork) committed: each repetition becomes one
    time-only profile at its key's setting, with the file's own per-worker means."""
    src, data = _upstream(name, tmp_path)
    expected = _by_hand(data)
    report, _ = _import(src, tmp_path, capsys)
    got: dict[tuple, list[tuple[float, float]]] = {}
    for p in report["profiles"]:
        setting = (p["num_cpus"], p["memory_mb"] or 0, p["tasks"])
        got.setdefault(setting, []).append((p["wall_s"], p["cold_start_s"]))
        assert p["total_j"] is None and p["source"] == "flexecutor"
    assert sorted(got) == sorted(expected)
    for setting, reps in expected.items():
        flat = [x for rep in reps for x in rep]
        assert [x for rep in got[setting] for x in rep] == pytest.approx(flat, rel=1e-12)
    assert report["energy"] is None


def test_the_same_profiles_in_two_versions_layouts_read_the_same(tmp_path, capsys):
    """flexecutor renamed ``cold_start_time`` to ``cold_start`` (db0c6c2) in the very file
    206fb3a holds: both read to the same profiles."""
    reads = []
    for name in ("wordcount_206fb3a.json", "wordcount_db0c6c2.json"):
        (tmp_path / name).mkdir()
        reads.append(_import(UPSTREAM / name, tmp_path / name, capsys)[0])
    old, new = reads
    assert len(old["profiles"]) == len(new["profiles"]) == 47
    strip = [{k: v for k, v in p.items() if k != "run_id"} for p in old["profiles"]]
    assert strip == [{k: v for k, v in p.items() if k != "run_id"} for p in new["profiles"]]


def test_the_energy_forks_steps_are_named_as_not_read(tmp_path, capsys):
    """The fork's ``TDP`` is worker seconds × CPU share and its ``RAPL`` has no unit or meter
    in the file: imported as time only, saying which steps were left."""
    report, text = _import(_upstream("fork_mini_map.json", tmp_path)[0], tmp_path, capsys)
    assert "time only" in text and "steps not read: RAPL, TDP" in text
    assert report["steps_not_read"] == ["RAPL", "TDP"]
    titanic, text = _import(_upstream("fork_titanic_512Mb_arm.json.gz", tmp_path)[0],
                            tmp_path, capsys)
    assert {"TDP", "perf_energy_cores", "rapl_energy_cores", "cpu_name"} <= \
        set(titanic["steps_not_read"])


def test_a_stage_that_ran_fewer_workers_than_its_key_keeps_the_keys_setting(tmp_path, capsys):
    """flexecutor runs min(workers, max_concurrency): the fork's reduce ran one worker under
    ``(1, 2048, 2)``; the profile is at 2 tasks, timed by the one worker listed."""
    src, data = _upstream("fork_mini_reduce.json", tmp_path)
    (entry,) = data.values()
    assert [len(rep) for rep in entry["read"]] == [1]
    (p,) = _import(src, tmp_path, capsys)[0]["profiles"]
    assert (p["tasks"], p["num_cpus"], p["memory_mb"]) == (2, 1.0, 2048.0)
    assert p["wall_s"] == entry["read"][0][0] + entry["compute"][0][0] + entry["write"][0][0]


def test_the_one_unreadable_layout_is_refused_in_one_line(tmp_path, capsys):
    """4 June 2024 (0dcf4b6): each step one flat list, every worker of every repetition
    appended to it, so nothing says which values make one repetition."""
    src = tmp_path / "flat.json"
    src.write_text(json.dumps({"(2, 400, 2)": {"read": [0.2, 0.3, 0.2, 0.2],
                                               "compute": [0.6, 0.7, 0.6, 0.6],
                                               "write": [0.2, 0.1, 0.2, 0.3],
                                               "cold_start_time": [2.4, 2.5, 2.6, 2.5]}}))
    code = run_command(profile.main, ["--import-flexecutor", str(src), "--workload", "w",
                                      "--stage", "s", "--db", str(tmp_path / "r.sqlite")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "flat list" in err
    assert not (tmp_path / "r.sqlite").exists()


def test_energy_for_the_first_repetitions_after_flexecutor_profiled_further():
    """flexecutor's profile() appends only its own steps to a file it finds: an export it
    profiled into has energy_j for the first repetitions, the later ones are time only."""
    data = {"(1, 1024, 2)": FLEX["(1, 1024, 2)"] | {"energy_j": [[10.0, 12.0]]}}
    first, later = parse_flexecutor(data, "w", "s")
    assert (first.total_j, later.total_j) == (22.0, None)
    assert later.wall_s == pytest.approx((4.8 + 4.6) / 2)
    too_many = {"(1, 1024, 2)": FLEX["(1, 1024, 2)"] | {"energy_j": [[1.0, 1.0]] * 3}}
    with pytest.raises(ConfigError, match="energy_j must be a list of at most 2 repetitions"):
        parse_flexecutor(too_many, "w", "s")


def green_file(runs: dict[str, list[list[dict]]]) -> dict:
    """A profiling file as the energy fork flexecutorGreen (JanToro26/flexecutorGreen) writes
    it, reimplemented from its source: ``DAGExecutor._store_profiling`` appends, per key of
    ``FunctionTimes.profile_keys() + energy_keys() + metadata_keys()``, one repetition of
    ``getattr(worker, key, None)`` per worker (``flexecutor/workflow/executor.py``,
    ``flexecutor/utils/dataclass.py``); ``StageFuture.get_timings`` sets ``energy`` (J) and
    ``energy_source`` from the first meter available (rapl, perf, psutil_model) or
    ``None, "none"``."""
    keys = ["read", "compute", "write", "cold_start", "energy", "energy_duration",
            "rapl_energy_pkg", "psutil_energy_pkg", "cpu_percent", "energy_source",
            "rapl_available", "cpu_name"]
    return {key: {k: [[w.get(k) for w in rep] for rep in reps] for k in keys}
            for key, reps in runs.items()}


def _worker(energy, source, t=1.0):
    return {"read": 0.1, "compute": t, "write": 0.1, "cold_start": 0.5, "energy": energy,
            "energy_source": source, "rapl_available": source == "rapl", "cpu_name": "Xeon"}


@pytest.mark.parametrize("source, kind, stage_j", [
    ("psutil_model", "modelled", 3.0 + 5.0),  # one meter per worker (Lambda): summed
    ("rapl", "measured", 5.0),  # one package counter every co-located worker reads: the max
])
def test_the_energy_forks_joules_import_under_the_meter_it_names(tmp_path, capsys, source,
                                                                 kind, stage_j):
    data = green_file({"(1, 2048, 2)": [[_worker(3.0, source), _worker(5.0, source)]],
                       "(2, 2048, 2)": [[_worker(2.0, source), _worker(2.0, source)]]})
    src = tmp_path / "stage0.json"
    src.write_text(json.dumps(data))
    report, text = _import(src, tmp_path, capsys)
    assert report["energy"]["meter"] == {"name": source, "kind": kind}
    assert "with energy: 2 of 2 profiles" in text and "energy_source" in text
    first = next(p for p in report["profiles"] if p["num_cpus"] == 1.0)
    assert first["total_j"] == stage_j and first["wall_s"] == pytest.approx(1.2)
    assert "energy" not in report["steps_not_read"]
    assert set(report["steps_not_read"]) == {"energy_duration", "rapl_energy_pkg",
                                             "psutil_energy_pkg", "cpu_percent",
                                             "rapl_available", "cpu_name"}


def test_the_energy_forks_unmetered_runs_are_time_only(tmp_path, capsys):
    data = green_file({"(1, 2048, 2)": [[_worker(None, "none"), _worker(None, "none")],
                                        [_worker(4.0, "psutil_model"),
                                         _worker(None, "none")]]})
    src = tmp_path / "stage0.json"
    src.write_text(json.dumps(data))
    report, text = _import(src, tmp_path, capsys)
    assert "time only" in text and report["energy"] is None
    assert [p["total_j"] for p in report["profiles"]] == [None, None]


def test_the_energy_forks_file_with_several_meters_is_refused_in_one_line(tmp_path, capsys):
    data = green_file({"(1, 2048, 1)": [[_worker(3.0, "rapl")]],
                       "(2, 2048, 1)": [[_worker(2.0, "psutil_model")]]})
    src = tmp_path / "stage0.json"
    src.write_text(json.dumps(data))
    code = run_command(profile.main, ["--import-flexecutor", str(src), "--workload", "w",
                                      "--stage", "s", "--db", str(tmp_path / "r.sqlite")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "several meters (psutil_model, rapl)" in err
    assert not (tmp_path / "r.sqlite").exists()


@pytest.mark.parametrize("data, message", [
    ({}, "non-empty JSON object"),
    ([], "non-empty JSON object"),
    ({"1, 1024": FLEX["(1, 1024, 2)"]}, "is not '\\(cpu, memory, workers\\)'"),
    ({"(1, 1024, 0)": FLEX["(1, 1024, 2)"]}, "workers >= 1"),
    ({"(1, 1024, 2)": {"read": [[1.0]], "compute": [[1.0]], "cold_start": [[0.1]]}},
     "missing field\\(s\\) write"),
    ({"(1, 1024, 2)": {"read": [["x"]], "compute": [[1.0]], "write": [[1.0]],
                       "cold_start": [[0.1]]}}, "read must be seconds >= 0, got 'x'"),
    ({"(1, 1024, 2)": {"read": [], "compute": [], "write": [], "cold_start": []}},
     "no repetitions"),
    ({"(1, 1024, 2)": {"read": [[1.0, 2.0]], "compute": [[1.0]], "write": [[1.0]],
                       "cold_start": [[0.1]]}}, "repetition 0 needs"),
    ({"(1, 1024, 2)": "fast"}, "expected an object of steps"),
])
def test_malformed_files_are_one_line_config_errors(data, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_flexecutor(data, "w", "s")
    assert "\n" not in str(err.value)


def test_flexecutor_timings_fit_a_time_only_model(synth):
    profiles = synth.make(tasks=(1, 2, 4, 8, 16), sizes=(1.0,), energy=False)
    data = json.loads(json.dumps(to_flexecutor_json(profiles)))
    model = fit_stage(parse_flexecutor(data, "synthetic", "map"))
    assert model.time_only and model.n_settings == 5
    t = synth.time(4, 1.0, 1.0)
    pred = model.predict({"tasks": 4}, 1.0)
    assert pred.wall_s.low <= t <= pred.wall_s.high


def test_an_energy_step_reads_as_the_workers_joules_summed(tmp_path):
    """A file with ``energy_j`` (each worker's joules, in the steps' shape: rayjoule's
    export) gives profiles with energy, stored and read back with the meter that saw it."""
    from rayjoule.modelling import choose_profiles, store_timings
    from rayjoule.runs.store import Store

    data = {k: v | {"energy_j": [[10.0 + i] * len(rep) for i, rep in enumerate(v["read"])]}
            for k, v in FLEX.items()}
    profiles = parse_flexecutor(data, "wc", "count")
    assert [p.total_j for p in profiles] == [20.0, 22.0, 40.0]
    with Store(tmp_path / "r.sqlite") as store:
        store_timings(store, "lithops", profiles, meter={"name": "rapl", "kind": "measured"})
        chosen = choose_profiles(store, "wc", None)
    assert sorted(p.total_j for p in chosen.profiles) == [20.0, 22.0, 40.0]
    assert {p.energy_kind for p in chosen.profiles} == {"measured"}
    assert chosen.meter == {"name": "rapl", "kind": "measured"}
    bad = {"(1, 1024, 1)": {"read": [[1.0]], "compute": [[1.0]], "write": [[1.0]],
                            "cold_start": [[0.1]], "energy_j": [[-1.0]]}}
    with pytest.raises(ConfigError, match="energy_j must be joules >= 0"):
        parse_flexecutor(bad, "w", "s")
