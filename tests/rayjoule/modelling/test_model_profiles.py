"""Profiles from the store: profiling runs only, per stage, per repeat."""

from __future__ import annotations

import pytest

from rayjoule.core.errors import ConfigError
from rayjoule.core.result import RunResult
from rayjoule.modelling import Profile, choose_profiles, profiles_from_store
from rayjoule.runs.store import Store


def _energy(total):
    return {"total_j": total, "static_j": total * 0.6, "dynamic_j": total * 0.4}


def _result(run_id, workload, config, wall_s, total_j, stages=(), repeats=()):
    d = {"run_id": run_id, "workload": workload, "framework": "native", "config": config,
         "wall_s": wall_s, "energy": _energy(total_j),
         "meter": {"name": "rapl", "kind": "measured"}, "tasks": [], "summary": {},
         "stages": list(stages), "repeats": [r.to_dict() for r in repeats]}
    return RunResult.from_dict(d)


def _store(results):
    store = Store(":memory:")
    for r in results:
        store.begin(r.run_id, workload=r.workload, framework="native", config=r.config)
        store.finish(r)
    return store


def _split_then_count(count_tasks: int):
    """A profiling run of two stages: ``split`` (4 tasks) then ``count``."""
    stage = {"name": "split", "tasks": 4, "num_cpus": 1.0, "wall_s": 2.0,
             "energy": _energy(80.0)}
    return _result("p1", "wordcount", {"profile": True, "size": 1000, "tasks": 4},
                   3.0, 120.0, stages=[stage, dict(stage, name="count", tasks=count_tasks,
                                                   energy=_energy(40.0))])


def test_profiles_come_from_profiling_runs_per_stage_and_per_repeat():
    pipeline = _split_then_count(2)
    single_cfg = {"profile": True, "size": None, "tasks": 8, "num_cpus": 0.5}
    reps = [_result(f"s1.{i}", "wordcount", single_cfg, 1.0 + i, 40.0 + i) for i in range(2)]
    single = _result("s1", "wordcount", single_cfg, 1.5, 40.5, repeats=reps)
    plain = _result("x1", "wordcount", {"size": 1000}, 9.0, 9.0)
    other = _result("o1", "pi", {"profile": True}, 9.0, 9.0)
    with _store([pipeline, single, plain, other]) as store:
        profiles = profiles_from_store(store, "wordcount")
    assert [(p.stage, p.tasks, p.run_id) for p in profiles] == [
        ("split", 4, "p1"), ("count", 2, "p1"), ("map", 8, "s1"), ("map", 8, "s1")]
    split, count, rep0, rep1 = profiles
    assert (split.size, split.wall_s, split.total_j, split.static_j) == (1000.0, 2.0, 80.0, 48.0)
    assert split.energy_kind == "measured" and split.source == "rayjoule"
    assert count.total_j == 40.0
    assert (rep0.num_cpus, rep0.size, rep0.wall_s, rep1.wall_s) == (0.5, 1.0, 1.0, 2.0)


def test_a_reading_stage_carries_its_upstream_task_count_whatever_the_route():
    with _store([_split_then_count(1)]) as store:
        split, count = profiles_from_store(store, "wordcount", reads={"count": ("split",)})
        plain = profiles_from_store(store, "wordcount")
    assert (split.upstream_tasks, split.upstream_stages) == (None, ())
    assert (count.upstream_tasks, count.upstream_stages) == (4, ("split",))
    assert count.fan_in is None  # not a shuffle: the exchange term stays out of its model
    assert all(p.upstream_tasks is None for p in plain)
    with pytest.raises(ConfigError, match="fan_in must be an integer"):
        Profile("w", "reduce", 2, 1.0, None, 1.0, 1.0, None, fan_in=4, fan_in_stages="map")
    for counts, stages in ((3, ()), (None, ("map",)), (3, "map"), (0, ("map",))):
        with pytest.raises(ConfigError, match="upstream_tasks must be an integer"):
            Profile("w", "top", 1, 1.0, None, 1.0, 1.0, None, upstream_tasks=counts,
                    upstream_stages=stages)


def test_chosen_profiles_know_what_each_stage_of_the_pipeline_reads():
    stage = {"name": "map", "tasks": 4, "num_cpus": 1.0, "wall_s": 2.0, "energy": _energy(80.0)}
    run = _result("w1", "wordcount", {"profile": True, "size": 1000}, 3.0, 120.0,
                  stages=[stage, dict(stage, name="reduce", tasks=2), dict(stage, name="top",
                                                                           tasks=1)])
    partial = _result("w2", "wordcount", {"profile": True, "size": 1000}, 3.0, 120.0,
                      stages=[dict(stage, name="top", tasks=1)])
    with _store([run, partial]) as store:
        chosen = choose_profiles(store, "wordcount", None)
    by = {(p.run_id, p.stage): p for p in chosen.profiles}
    assert by["w1", "map"].upstream_tasks is None
    assert (by["w1", "reduce"].upstream_tasks, by["w1", "reduce"].upstream_stages) == (4, ("map",))
    assert by["w1", "reduce"].fan_in == 4  # a shuffle reader: the exchange's fan-in as well
    assert (by["w1", "top"].upstream_tasks, by["w1", "top"].upstream_stages) == (2, ("reduce",))
    assert by["w2", "top"].upstream_tasks is None  # its run does not say what it read


def test_a_profile_refuses_impossible_figures():
    with pytest.raises(ConfigError, match="wall_s must be a number > 0"):
        Profile("w", "map", 1, 1.0, None, 1.0, 0.0, None, run_id="r1")
    with pytest.raises(ConfigError, match="tasks must be an integer"):
        Profile("w", "map", 0, 1.0, None, 1.0, 1.0, None)
    p = Profile("w", "map", 2, 1.0, 512.0, 1.0, 1.0, 5.0)
    assert Profile.from_dict(p.to_dict()) == p
