"""flexecutor's profiling JSON: read, written back, and refused in one line when malformed."""

from __future__ import annotations

import json

import pytest

from rayjoule.core.errors import ConfigError
from rayjoule.modelling import fit_stage, parse_flexecutor, to_flexecutor_json

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
