"""``profile --export-flexecutor``: flexecutor's layout with energy, read back by both tools."""

from __future__ import annotations

import ast
import json
import math

import numpy as np
import pytest

from rayjoule.cli import profile
from rayjoule.cli.common import run_command
from rayjoule.modelling import choose_profiles, fit_stage, profiles_from_store
from rayjoule.runs.store import Store

METER = ["--meter", "tdp", "--idle-seconds", "0"]
#: five task counts at the grid size (⅛ of 400000), twice each: enough for a time model
PI = ["--workload", "pi", "--size", "400000", "--concurrency", "2", "--task-counts",
      "1,2,3,4,6", *METER]
GRID_SIZE = 50_000.0


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A profiled store of pi and its export: (db, data, meta, folder)."""
    tmp = tmp_path_factory.mktemp("export")
    db, out = tmp / "r.sqlite", tmp / "map.json"
    assert profile.main([*PI, "--db", str(db)]) == 0
    assert profile.main(["--export-flexecutor", str(out), "--workload", "pi", "--db",
                         str(db)]) == 0
    meta = json.loads((tmp / "map.json.meta.json").read_text())
    return db, json.loads(out.read_text()), meta, tmp


def flexecutor_load(data: dict) -> dict:
    """flexecutor's own reading of a profiling file, as in its source:
    ``flexecutor/utils/utils.py`` ``load_profiling_results`` turns every top-level key into
    a tuple (``ast.literal_eval``), and ``flexecutor/modelling/anaperfmodel.py``
    ``AnaPerfModel.train`` needs two configurations or more, unpacks each key as
    ``num_vcpu, memory, num_func`` and each entry must hold ``FunctionTimes.profile_keys()``
    (``flexecutor/utils/dataclass.py``), whose repetitions it extends per phase;
    ``flexecutor/modelling/distperfmodel.py`` ``DistPerfModel.train`` adds the four steps
    as arrays (repetitions × workers). Each takes its steps by name: ``energy_j`` rides
    along unread. ``AnaPerfModel`` fits each step against ``_config_to_xparam`` =
    ``round(num_vcpu * memory * num_func, 1)``: distinct settings need distinct x > 0."""
    loaded = {ast.literal_eval(k): v for k, v in data.items()}
    if len(loaded) < 2:
        raise ValueError("At least two profiled configurations for each stage are required")
    xs = [round(cpu * memory * workers, 1) for cpu, memory, workers in loaded]
    assert min(xs) > 0 and len(set(xs)) == len(xs)
    for config_tuple, entry in loaded.items():
        num_vcpu, memory, num_func = config_tuple
        assert all(key in entry for key in ["read", "compute", "write", "cold_start"])
        for phase in ["cold_start", "read", "compute", "write"]:
            points: list = []
            points.extend(entry[phase])
            assert all(len(rep) == num_func for rep in points)
            assert all(isinstance(v, float) for rep in points for v in rep)
        latencies = (np.array(entry["read"]) + np.array(entry["compute"])
                     + np.array(entry["write"]) + np.array(entry["cold_start"]))
        assert latencies.shape == (len(entry["read"]), num_func)
    return loaded


def _same(rows: list[tuple], expected: list[tuple]) -> bool:
    """Equal settings, equal seconds (to float rounding), row by row."""
    return len(rows) == len(expected) and all(
        a[:-1] == b[:-1] and a[-1] == pytest.approx(b[-1], rel=1e-9)
        for a, b in zip(rows, expected, strict=True))


def _originals(db, size=GRID_SIZE):
    with Store(db) as s:
        return [p for p in profiles_from_store(s, "pi") if p.size == size]


def test_flexecutors_loader_accepts_the_export_with_energy_as_one_more_step(exported):
    db, data, meta, _ = exported
    loaded = flexecutor_load(data)
    # memory: the 1769 MB a vCPU buys, as flexecutor's schedulers turn CPUs into memory
    assert sorted(loaded) == [(1, 1769, w) for w in (1, 2, 3, 4, 6)]
    assert meta["memory_from_cpus"] == [str(k) for k in sorted(loaded)]
    for entry in data.values():
        assert list(entry) == ["read", "compute", "write", "cold_start", "energy_j"]
        assert len(entry["energy_j"]) == len(entry["compute"]) == 2  # two repeats each
    assert meta["meter"] == {"name": "tdp", "kind": "modelled"}
    assert (meta["workload"], meta["stage"], meta["size"]) == ("pi", "map", GRID_SIZE)
    assert meta["energy_step"] == "energy_j" and "compute" in meta["split"]


def test_every_worker_spans_the_stage_and_queued_tasks_wait_in_read(exported):
    _, data, _, _ = exported
    for key, entry in data.items():
        workers = ast.literal_eval(key)[2]
        for r in range(len(entry["compute"])):
            spans = [sum(entry[s][r][w] for s in ("read", "compute", "write"))
                     for w in range(workers)]
            assert max(spans) - min(spans) < 1e-9  # each worker: the stage's window
            assert all(v >= 0 for s in ("read", "compute", "write") for v in entry[s][r])
            assert entry["cold_start"][r] == [0.0] * workers
            assert all(j > 0 for j in entry["energy_j"][r])
    # six tasks on two processes: the later ones wait for a slot, and that wait is read
    assert all(max(rep) > 0 for rep in data["(1, 1769, 6)"]["read"])
    assert all(rep == [0.0] for rep in data["(1, 1769, 1)"]["read"])


def test_a_pipeline_stage_is_chosen_by_name(tmp_path, capsys):
    db, out = tmp_path / "wc.sqlite", tmp_path / "reduce.json"
    assert profile.main(["--workload", "wordcount", "--size", "20000", "--concurrency", "2",
                         *METER, "--db", str(db)]) == 0
    code = run_command(profile.main, ["--export-flexecutor", str(out), "--workload",
                                      "wordcount", "--db", str(db)])
    assert code == 2 and "has stages map, reduce, top; pick one with --stage" in \
        capsys.readouterr().err
    assert profile.main(["--export-flexecutor", str(out), "--workload", "wordcount",
                         "--stage", "reduce", "--db", str(db)]) == 0
    meta = json.loads((tmp_path / "reduce.json.meta.json").read_text())
    assert meta["stage"] == "reduce" and meta["framework"] == "native"
    with Store(db) as s:
        reduces = [p for p in profiles_from_store(s, "wordcount")
                   if p.stage == "reduce" and p.size == meta["size"]]
    data = flexecutor_load(json.loads(out.read_text()))
    assert sum(len(e["compute"]) for e in data.values()) == len(reduces)
    assert sorted(k[2] for k, e in data.items() for _ in e["compute"]) == \
        sorted(p.tasks for p in reduces)


def _import(src, workload, db, *extra):
    return profile.main(["--import-flexecutor", str(src), "--workload", workload, "--stage",
                         "map", *extra, "--db", str(db)])


def test_export_then_import_gives_back_every_value(exported, capsys):
    db, data, meta, tmp = exported
    back = tmp / "back.sqlite"
    capsys.readouterr()
    assert _import(tmp / "map.json", "pi-flex", back) == 0  # size: the sidecar's
    said = capsys.readouterr().out
    assert "time only" not in said and "with energy" in said and "tdp" in said
    with Store(back) as s:
        chosen = choose_profiles(s, "pi-flex", None)
    imported = chosen.profiles
    # one repetition → one profile: its stage time, cold start and joules, as exported
    exported_reps = sorted(
        (ast.literal_eval(k)[2],
         sum(sum(e[step][r]) for step in ("read", "compute", "write")) / len(e["compute"][r]),
         sum(e["cold_start"][r]) / len(e["cold_start"][r]),
         math.fsum(e["energy_j"][r]) + meta["overhead_j"][k][r])
        for k, e in data.items() for r in range(len(e["compute"])))
    back_reps = sorted((p.tasks, p.wall_s, p.cold_start_s, p.total_j) for p in imported)
    assert [r[0] for r in back_reps] == [r[0] for r in exported_reps]
    for got, want in zip(back_reps, exported_reps, strict=True):
        assert got[1:] == pytest.approx(want[1:], rel=1e-9)
    assert {p.size for p in imported} == {GRID_SIZE}
    # the memory the export derived from the CPUs reads back as unset, as it was stored
    assert {p.memory_mb for p in imported} == {p.memory_mb for p in _originals(db)} == {None}
    # the meter label came with the energy, from the sidecar
    assert chosen.meter == {"name": "tdp", "kind": "modelled"}
    assert {p.energy_kind for p in imported} == {"modelled"}
    # what rayjoule's own models were fitted on: every repetition's stage time and joules
    originals = _originals(db)
    assert _same(sorted((p.tasks, p.num_cpus, p.wall_s) for p in imported),
                 sorted((p.tasks, p.num_cpus, p.wall_s) for p in originals))
    assert sorted(p.total_j for p in imported) == \
        pytest.approx(sorted(p.total_j for p in originals), rel=1e-9)


def flexecutor_profiles_further(path, key: tuple, workers: list[dict]) -> None:
    """flexecutor's ``DAGExecutor.profile`` run on a file that exists, as in its source
    (``flexecutor/workflow/executor.py`` ``_store_profiling``, ``flexecutor/utils/utils.py``
    load/save): per step of ``FunctionTimes.profile_keys()`` — its own four only — one new
    repetition of per-worker values, appended; the file written back with ``str(key)``."""
    data = {ast.literal_eval(k): v for k, v in json.loads(path.read_text()).items()}
    entry = data.setdefault(key, {})
    for step in ["read", "compute", "write", "cold_start"]:
        entry.setdefault(step, []).append([])
    for times in workers:
        for step in ["read", "compute", "write", "cold_start"]:
            entry[step][-1].append(times[step])
    path.write_text(json.dumps({str(k): v for k, v in data.items()}, indent=4))


def test_an_export_flexecutor_profiled_further_imports_with_its_energy_kept(exported,
                                                                          tmp_path, capsys):
    """flexecutor appends to its own steps only, so energy_j then covers the first
    repetitions: those import with their joules, flexecutor's own ones as time only."""
    _, data, meta, tmp = exported
    src = tmp_path / "map.json"
    src.write_text(json.dumps(data))
    (tmp_path / "map.json.meta.json").write_text((tmp / "map.json.meta.json").read_text())
    lambda_worker = {"read": 0.25, "compute": 1.5, "write": 0.25, "cold_start": 2.0}
    flexecutor_profiles_further(src, (1, 1769, 2), [lambda_worker] * 2)
    flexecutor_profiles_further(src, (2, 1769, 4), [lambda_worker] * 4)
    ours = sum(len(e["compute"]) for e in data.values())
    capsys.readouterr()
    assert _import(src, "pi", tmp_path / "more.sqlite") == 0
    assert f"with energy: {ours} of {ours + 2} profiles" in capsys.readouterr().out
    with Store(tmp_path / "more.sqlite") as s:
        back = profiles_from_store(s, "pi")
    theirs = sorted((p.tasks, p.num_cpus, p.memory_mb, p.wall_s, p.cold_start_s)
                    for p in back if p.total_j is None)
    assert theirs == [(2, 1.0, None, 2.0, 2.0), (4, 2.0, 1769.0, 2.0, 2.0)]
    assert sorted(p.total_j for p in back if p.total_j is not None) == pytest.approx(sorted(
        math.fsum(e["energy_j"][r]) + meta["overhead_j"][k][r]
        for k, e in data.items() for r in range(len(e["energy_j"]))), rel=1e-9)


def test_energy_without_its_sidecar_is_of_unknown_kind_never_measured(exported, tmp_path,
                                                                       capsys):
    _, data, _, _ = exported
    src = tmp_path / "bare.json"  # the export without its sidecar
    src.write_text(json.dumps(data))
    capsys.readouterr()
    assert _import(src, "pi", tmp_path / "bare.sqlite", "--size", str(GRID_SIZE)) == 0
    said = capsys.readouterr().out
    assert "time only" not in said and "unknown" in said and "measured" in said
    with Store(tmp_path / "bare.sqlite") as s:
        chosen = choose_profiles(s, "pi", None)
    assert chosen.meter == {"name": "unknown", "kind": "unknown"}
    assert {p.memory_mb for p in chosen.profiles} == {1769.0}  # the keys' memory, as written
    # without the overhead share the joules are the tasks' alone
    assert sorted(p.total_j for p in chosen.profiles) == pytest.approx(sorted(
        math.fsum(e["energy_j"][r]) for e in data.values() for r in range(len(e["energy_j"]))))
    model = fit_stage(chosen.profiles)
    assert any("unknown kind" in n and "not known to be measured" in n for n in model.notes)


def test_a_bad_sidecar_is_one_line_and_stores_nothing(exported, tmp_path, capsys):
    _, data, _, _ = exported
    src = tmp_path / "map.json"
    src.write_text(json.dumps(data))
    (tmp_path / "map.json.meta.json").write_text(json.dumps({"meter": {"name": "tdp"}}))
    db = tmp_path / "bad.sqlite"
    code = run_command(profile.main, ["--import-flexecutor", str(src), "--workload", "pi",
                                      "--stage", "map", "--db", str(db)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "sidecar" in err
    with Store(db) as s:
        assert profiles_from_store(s, "pi") == []


def test_models_fitted_on_the_import_agree_with_the_originals(exported):
    db, _, _, tmp = exported
    back = tmp / "agree.sqlite"
    assert _import(tmp / "map.json", "pi", back) == 0
    with Store(back) as s:
        imported = fit_stage(profiles_from_store(s, "pi"))
    original = fit_stage(_originals(db))
    assert not imported.time_only and imported.time_form == original.time_form
    for tasks in (1, 2, 3, 4, 6):
        a = original.predict({"tasks": tasks, "num_cpus": 1.0}, GRID_SIZE)
        b = imported.predict({"tasks": tasks, "num_cpus": 1.0}, GRID_SIZE)
        for q in ("exec_s", "total_j"):  # time and energy, each within the other's interval
            qa, qb = getattr(a, q), getattr(b, q)
            assert qa.low <= qb.median <= qa.high and qb.low <= qa.median <= qb.high


def test_another_profiled_size_is_exported_on_request(exported):
    db, _, _, tmp = exported
    out = tmp / "anchors.json"
    assert profile.main(["--export-flexecutor", str(out), "--workload", "pi", "--size",
                         "200000", "--db", str(db)]) == 0
    data = flexecutor_load(json.loads(out.read_text()))
    assert sorted(data) == [(1, 1769, 1), (1, 1769, 6)]  # the anchors: the task counts' ends


@pytest.mark.parametrize("extra, message", [
    (["--workload", "nosuch"], "no profiling runs of 'nosuch'"),
    (["--workload", "pi", "--stage", "reduce"], "no profiled stage 'reduce'"),
    (["--workload", "pi", "--size", "7"], "not profiled at size 7"),
    (["--workload", "pi", "--task-counts", "1,2"], "--task-counts does not go with"),
    (["--stage", "map"], "needs --workload"),
])
def test_bad_input_is_one_line_and_writes_nothing(exported, tmp_path, capsys, extra, message):
    db = exported[0]
    out = tmp_path / "out.json"
    code = run_command(profile.main, ["--export-flexecutor", str(out), "--db", str(db), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err
    assert not out.exists() and not (tmp_path / "out.json.meta.json").exists()


def test_an_unwritable_path_is_refused_before_reading_the_store(exported, tmp_path, capsys):
    db = exported[0]
    code = run_command(profile.main, ["--export-flexecutor", str(tmp_path), "--workload", "pi",
                                      "--db", str(db)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "is a folder" in err
