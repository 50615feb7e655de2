import pytest

from rayjoule.core.config import RunConfig
from rayjoule.core.errors import ConfigError
from workloads import WorkloadError


def test_defaults_are_filled_by_the_workload():
    import workloads

    cfg = RunConfig(workload="mandelbrot").validated()
    assert cfg.size == workloads.get("mandelbrot").default_size
    assert cfg.params["max_iter"] == 300


@pytest.mark.parametrize("field, value, match", [
    ("tasks", 0, "tasks must be >= 1"),
    ("tasks", -3, "tasks must be >= 1"),
    ("concurrency", 0, "concurrency must be >= 1"),
    ("num_cpus", 0, "num_cpus must be a number > 0"),
    ("repeats", 0, "repeats must be >= 1"),
    ("framework", "spark", "framework must be one of"),
    ("mode", "threads", "mode must be one of"),
    ("tasks", 2.5, "tasks must be an integer"),
])
def test_bad_fields_name_the_field(field, value, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig(workload="pi", **{field: value}).validated()


def test_invalid_combinations():
    with pytest.raises(ConfigError, match="actors"):
        RunConfig(workload="pi", framework="native", mode="actors").validated()
    with pytest.raises(ConfigError, match="address"):
        RunConfig(workload="pi", framework="native", address="10.0.0.1:6379").validated()


def test_unknown_workload_lists_known_ones():
    with pytest.raises(WorkloadError, match="pi"):
        RunConfig(workload="nope").validated()


def test_precedence_arguments_over_environment_over_file(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text('[run]\nworkload = "primes"\nframework = "ray"\ntasks = 4\nmeter = "rapl"\n')
    env = {"RAYJOULE_METER": "tdp", "RAYJOULE_FRAMEWORK": "native"}
    cfg = RunConfig.resolve({"tasks": 8, "framework": None}, env=env, file=f)
    assert (cfg.workload, cfg.framework, cfg.tasks, cfg.meter) == ("primes", "native", 8, "tdp")


def test_bad_file_and_unknown_fields(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        RunConfig.resolve({}, env={}, file=tmp_path / "none.toml")
    with pytest.raises(ConfigError, match="unknown config field"):
        RunConfig.from_dict({"workload": "pi", "parallelism": 3})


def test_round_trip():
    cfg = RunConfig(workload="pi", size=1000, params={"kernel": "python"}).validated()
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
