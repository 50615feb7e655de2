"""The one typed configuration of a metered run.

Precedence is explicit and single-sourced (unlike Lithops' six config
sources): command-line arguments > environment (``RAYJOULE_*``, ``RAY_ADDRESS``)
> a TOML file > the defaults written here.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rayjoule.core.errors import ConfigError

FRAMEWORKS = ("native", "ray", "lithops")
MODES = ("tasks", "actors")
TDP_SCOPES = ("host", "process")
DEFAULT_DB = "rayjoule.sqlite"

#: environment variable → RunConfig field it sets (the middle layer of precedence)
ENV_FIELDS = {
    "RAYJOULE_FRAMEWORK": "framework",
    "RAYJOULE_METER": "meter",
    "RAYJOULE_TDP_SCOPE": "tdp_scope",
    "RAYJOULE_IDLE_SECONDS": "idle_seconds",
    "RAY_ADDRESS": "address",
    "RAYJOULE_LITHOPS_CONFIG": "lithops_config",
}


@dataclass(frozen=True)
class RunConfig:
    """What to run, where, and how to meter it.

    >>> RunConfig(workload="pi", size=10_000, framework="native").validated().tasks
    1
    """

    workload: str = "pi"
    size: int | float | str | None = None  # the workload converts (sleep takes seconds)
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    framework: str = "native"
    tasks: int = 1
    concurrency: int | None = None  # None: this machine's CPU count
    num_cpus: float = 1.0
    mode: str = "tasks"
    meter: str = "auto"
    idle_seconds: float = 2.0
    repeats: int = 1
    address: str | None = None
    tdp_scope: str = "host"
    lithops_config: str | None = None
    keep_alive: bool = False

    def validated(self) -> RunConfig:
        """Check every field and the workload's own params; return a config with defaults filled.

        Raises ConfigError (or WorkloadError from the workload) naming the bad field.
        """
        import workloads

        _check_int("tasks", self.tasks, minimum=1)
        concurrency = (os.cpu_count() or 1) if self.concurrency is None else self.concurrency
        _check_int("concurrency", concurrency, minimum=1)
        _check_int("repeats", self.repeats, minimum=1)
        _check_int("seed", self.seed, minimum=0)
        if not isinstance(self.num_cpus, int | float) or isinstance(self.num_cpus, bool):
            raise ConfigError(f"num_cpus must be a number, got {self.num_cpus!r}")
        if not self.num_cpus > 0:
            raise ConfigError(f"num_cpus must be > 0, got {self.num_cpus}")
        if not isinstance(self.idle_seconds, int | float) or self.idle_seconds < 0:
            raise ConfigError(f"idle_seconds must be a number >= 0, got {self.idle_seconds!r}")
        _check_choice("framework", self.framework, FRAMEWORKS)
        _check_choice("mode", self.mode, MODES)
        _check_choice("tdp_scope", self.tdp_scope, TDP_SCOPES)
        if self.mode == "actors" and self.framework != "ray":
            raise ConfigError(f"mode 'actors' needs framework 'ray', not {self.framework!r}")
        if self.address and self.framework != "ray":
            raise ConfigError(f"address is a Ray cluster address; framework is {self.framework!r}")
        if self.lithops_config and self.framework != "lithops":
            raise ConfigError("lithops_config is only used with framework 'lithops'")
        wl = workloads.get(self.workload)
        size, params = wl.validate(self.size, self.tasks, dict(self.params), seed=self.seed)
        return dataclasses.replace(self, size=size, params=params, num_cpus=float(self.num_cpus),
                                   concurrency=concurrency)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["params"] = dict(self.params)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
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
            merged.update(_read_toml(Path(file)))
        env = os.environ if env is None else env
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for var, name in ENV_FIELDS.items():
            if env.get(var):
                merged[name] = _coerce(name, env[var], types[name])
        merged.update({k: v for k, v in (args or {}).items() if v is not None})
        return cls.from_dict(merged)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return dict(data.get("run", data))


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


def _check_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
