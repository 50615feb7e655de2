"""The one typed configuration of a metered run.

Precedence is explicit and single-sourced (unlike Lithops' six config
sources): command-line arguments > environment (``RAYJOULE_*``, ``RAY_ADDRESS``)
> a TOML file > the defaults written here.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import math
import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rayjoule.core.errors import ConfigError

#: the built-in frameworks (their executors are declared under :data:`FRAMEWORK_GROUP`)
FRAMEWORKS = ("native", "ray", "lithops")
#: the entry-point group executors register under (``rayjoule.frameworks.registry`` loads them)
FRAMEWORK_GROUP = "rayjoule.frameworks"
MODES = ("tasks", "actors")
TDP_SCOPES = ("host", "process")
DEFAULT_DB = "rayjoule.sqlite"
#: native concurrency is worker processes on this machine: at most this many per CPU.
#: Past the CPUs more processes only time-slice, and ``profile --concurrency 100000``
#: (task counts up to 4 × concurrency) forked until the load average passed 900
NATIVE_PROCESSES_PER_CPU = 32

#: environment variable → RunConfig field it sets (the middle layer of precedence)
ENV_FIELDS = {
    "RAYJOULE_FRAMEWORK": "framework",
    "RAYJOULE_METER": "meter",
    "RAYJOULE_TDP_SCOPE": "tdp_scope",
    "RAYJOULE_IDLE_SECONDS": "idle_seconds",
    "RAY_ADDRESS": "address",
    "RAYJOULE_LITHOPS_CONFIG": "lithops_config",
    "RAYJOULE_DATA_STORE": "data_store",
    "RAYJOULE_TDP_WATTS": "tdp_watts",
    "RAYJOULE_CPU_THREADS": "cpu_threads",
    "RAYJOULE_MAX_HOURS": "max_hours",
}


@dataclass(frozen=True)
class RunConfig:
    """What to run, where, and how to meter it.

    >>> RunConfig(workload="pi", size=10_000, framework="native").validated().tasks
    1
    """

    workload: str = "pi"  # a workload or pipeline name, or package.module:NAME
    size: int | float | str | None = None  # the workload converts (sleep takes seconds)
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    framework: str = "native"
    #: one number for every stage, or stage → tasks (``{"pca": 2, "train": 8}``)
    tasks: int | Mapping[str, int] = 1
    concurrency: int | None = None  # None: this machine's CPU count
    #: CPUs each task reserves: one number, or stage → CPUs
    num_cpus: float | Mapping[str, float] = 1.0
    mode: str = "tasks"
    meter: str = "auto"
    idle_seconds: float = 2.0
    repeats: int = 1
    address: str | None = None
    tdp_scope: str = "host"
    lithops_config: str | None = None
    keep_alive: bool = False
    #: where native and Lithops hand data between stages: a folder or s3://bucket/prefix
    data_store: str | None = None
    #: the tdp model's basis, overriding the CPU table (``--tdp-watts``/``--cpu-threads``)
    tdp_watts: float | None = None
    cpu_threads: int | None = None
    #: tags the run as a profiling run (``python -m rayjoule.profile``)
    profile: bool = False
    #: a run estimated to take longer than this is refused up front (``--max-hours``)
    max_hours: float = 1.0

    def validated(self) -> RunConfig:
        """Check every field and the workload's own params; return a config with defaults filled.

        Raises ConfigError (or WorkloadError from the workload) naming the bad field.
        """
        import workloads

        _check_per_stage("tasks", self.tasks, int)
        concurrency = (os.cpu_count() or 1) if self.concurrency is None else self.concurrency
        _check_int("concurrency", concurrency, minimum=1)
        cpus = os.cpu_count() or 1
        if self.framework == "native" and concurrency > NATIVE_PROCESSES_PER_CPU * cpus:
            raise ConfigError(
                f"concurrency {concurrency} on native means as many processes on this "
                f"machine's {cpus} CPUs; at most {NATIVE_PROCESSES_PER_CPU * cpus} "
                f"({NATIVE_PROCESSES_PER_CPU} per CPU), or use ray or lithops for more")
        _check_int("repeats", self.repeats, minimum=1)
        _check_int("seed", self.seed, minimum=0)
        _check_per_stage("num_cpus", self.num_cpus, float)
        if not _is_number(self.idle_seconds) or self.idle_seconds < 0:
            raise ConfigError(f"idle_seconds must be a number >= 0, got {self.idle_seconds!r}")
        if self.tdp_watts is not None and not (_is_number(self.tdp_watts) and self.tdp_watts > 0):
            raise ConfigError(f"tdp_watts must be a number > 0, got {self.tdp_watts!r}")
        if not _is_number(self.max_hours) or not self.max_hours > 0:
            raise ConfigError(f"max_hours must be a number > 0, got {self.max_hours!r}")
        if self.cpu_threads is not None:
            _check_int("cpu_threads", self.cpu_threads, minimum=1)
        if self.framework not in FRAMEWORKS:  # only a plug-in's name needs the metadata read
            _check_choice("framework", self.framework, framework_names())
        _check_choice("mode", self.mode, MODES)
        _check_choice("tdp_scope", self.tdp_scope, TDP_SCOPES)
        if self.mode == "actors" and self.framework != "ray":
            raise ConfigError(f"mode 'actors' needs framework 'ray', not {self.framework!r}")
        if self.address and self.framework != "ray":
            raise ConfigError(f"address is a Ray cluster address; framework is {self.framework!r}")
        if self.lithops_config and self.framework != "lithops":
            raise ConfigError("lithops_config is only used with framework 'lithops'")
        if self.data_store and self.framework == "ray":
            raise ConfigError("data_store is for native and Lithops; Ray passes object "
                              "references between stages")
        pipeline = workloads.get_pipeline(self.workload)
        size, params, tasks = pipeline.validate(self.size, _plain(self.tasks),
                                                dict(self.params), seed=self.seed)
        pipeline.validate_per_stage("num_cpus", _plain(self.num_cpus))
        return dataclasses.replace(self, size=size, params=params, concurrency=concurrency)

    def stage_settings(self, pipeline: Any) -> tuple[dict[str, int], dict[str, float]]:
        """Tasks and CPUs per stage of ``pipeline`` (a validated config's)."""
        _, _, tasks = pipeline.validate(self.size, _plain(self.tasks), dict(self.params),
                                        seed=self.seed)
        return tasks, pipeline.validate_per_stage("num_cpus", _plain(self.num_cpus))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["params"] = dict(self.params)
        d["tasks"] = _plain(self.tasks)
        d["num_cpus"] = _plain(self.num_cpus)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
        for name in _TEXT_FIELDS:
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{name} must be text, got {value!r}")
        if "params" in data and not isinstance(data["params"], Mapping):
            raise ConfigError(f"params must be a table of key = value, got {data['params']!r}")
        if "keep_alive" in data and not isinstance(data["keep_alive"], bool):
            raise ConfigError(f"keep_alive must be true or false, got {data['keep_alive']!r}")
        return cls(**dict(data))

    @classmethod
    def resolve(
        cls,
        args: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        file: str | Path | None = None,
    ) -> RunConfig:
        """Merge the three sources with arguments > environment > file > defaults.

        ``args`` entries that are None mean "not given" and fall through.
        """
        merged: dict[str, Any] = {}
        if file is not None:
            table = read_config_file(file).get("run", {})
            if not isinstance(table, dict):
                raise ConfigError(f"config file {file}: [run] must be a table")
            merged.update(table)
        env = os.environ if env is None else env
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for var, name in ENV_FIELDS.items():
            if env.get(var):
                merged[name] = _coerce(name, env[var], types[name])
        merged.update({k: v for k, v in (args or {}).items() if v is not None})
        return cls.from_dict(merged)


def max_hours_given(given: float | None, env: Mapping[str, str] | None = None) -> float:
    """``--max-hours`` for a command without a RunConfig (a serial run, a program tune):
    the value given, else ``RAYJOULE_MAX_HOURS``, else RunConfig's default — the same
    precedence :meth:`RunConfig.resolve` applies. The caller checks the range."""
    if given is not None:
        return given
    var = next(v for v, name in ENV_FIELDS.items() if name == "max_hours")
    text = (os.environ if env is None else env).get(var, "").strip()
    if not text:
        return RunConfig.max_hours
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{var} must be a number > 0, got {text!r}") from None


def framework_names() -> tuple[str, ...]:
    """The built-in frameworks, then those third parties registered, sorted.

    Only names are read (the distributions' metadata), so this floor never imports an
    executor; :func:`rayjoule.frameworks.registry.executor_class` loads the one chosen.
    """
    return FRAMEWORKS + _registered_names(tuple(sys.path))


@functools.lru_cache(maxsize=8)
def _registered_names(path: tuple[str, ...]) -> tuple[str, ...]:
    """Plug-in framework names as installed on ``path`` (a cache: reading metadata is slow)."""
    try:
        registered = {ep.name for ep in importlib.metadata.entry_points(group=FRAMEWORK_GROUP)}
    except Exception:  # a broken distribution's metadata must not hide the built-ins
        registered = set()
    return tuple(sorted(registered - set(FRAMEWORKS)))


#: a --config file's tables: [run] (RunConfig fields) and those of the commands that read
#: their own options from it (cli.config_file.file_defaults)
CONFIG_TABLES = ("run", "compare", "tune")


def read_config_file(file: str | Path) -> dict[str, Any]:
    """A ``--config`` TOML file: ``[run]`` (RunConfig fields) and one table per command.

    Every way a file can be wrong is one ConfigError line: missing, a folder, unreadable,
    not UTF-8, not TOML.
    """
    path = Path(file)
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder, not a TOML file") from None
    except PermissionError:
        raise ConfigError(f"config file {path} is not readable (permission denied)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    unknown = sorted(set(data) - set(CONFIG_TABLES))
    if unknown:  # a misspelt [runn] was silently ignored, its settings with it
        raise ConfigError(f"config file {path}: unknown table(s) {', '.join(unknown)}; "
                          f"known: {', '.join(CONFIG_TABLES)}")
    return data


def _coerce(name: str, text: str, type_name: Any) -> Any:
    type_name = str(type_name)
    try:
        if type_name.startswith("float"):
            return float(text)
        if type_name.startswith("int"):
            return int(text)
    except ValueError:
        raise ConfigError(f"{name}: cannot read {text!r} as a number") from None
    return text


_TEXT_FIELDS = ("workload", "framework", "mode", "meter", "address", "tdp_scope",
                "lithops_config", "data_store")


def _is_number(value: Any) -> bool:
    """A real, finite number (bools and NaN/inf are not)."""
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)


def _plain(value: Any) -> Any:
    """A per-stage mapping as a plain dict (JSON-safe); a number stays a number."""
    return dict(value) if isinstance(value, Mapping) else value


def _check_per_stage(name: str, value: Any, kind: type) -> None:
    """One positive number, or a mapping of stage names to positive numbers."""
    items = value.items() if isinstance(value, Mapping) else [("", value)]
    for stage, v in items:
        label = f"{name} of stage {stage!r}" if stage else name
        if kind is int:
            _check_int(label, v, minimum=1)
        elif not _is_number(v) or not v > 0:
            raise ConfigError(f"{label} must be a number > 0, got {v!r}")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
