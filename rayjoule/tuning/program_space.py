"""The knobs of a user's program that a tune may turn: ``[knob.NAME]`` tables of a TOML file.

Why its own space (not :class:`~rayjoule.tuning.space.SearchSpace`): a program's knobs are
whatever keyword arguments its function takes, so each knob is declared (kind, bounds or
choices) and checked against the function's signature before anything runs.

>>> def etl(concurrency=2, batch_size=1024, fmt="parquet"): ...
>>> space = ProgramSpace.from_mapping({
...     "concurrency": {"kind": "int", "low": 1, "high": 8},
...     "batch_size": {"kind": "int", "low": 64, "high": 4096, "log": True},
...     "fmt": {"kind": "categorical", "choices": ["parquet", "csv"]}}, etl)
>>> space.names
('concurrency', 'batch_size', 'fmt')
>>> space.defaults(etl)
{'concurrency': 2, 'batch_size': 1024, 'fmt': 'parquet'}
"""

from __future__ import annotations

import inspect
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rayjoule.core.errors import ConfigError
from rayjoule.tuning.space import MAX_GRID_VALUES

KINDS = ("int", "float", "categorical")
_KEYS = {"int": {"kind", "low", "high", "log", "step"},
         "float": {"kind", "low", "high", "log", "step"},
         "categorical": {"kind", "choices"}}
#: values a grid takes from a numeric range without a step
GRID_POINTS = 5
#: most choices of a categorical knob: Optuna stores the whole list with every trial's value
#: (10**6 choices were 24 MB of storage for two trials and their re-runs)
MAX_CHOICES = 1000


@dataclass(frozen=True)
class Knob:
    """One keyword argument of the program and the values a trial may give it."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """Ask an Optuna trial for this knob's value."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high),
                                     step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high),
                                   step=self.step, log=self.log)

    def grid(self) -> list[Any]:
        """The values the grid sampler tries: every choice, every step, or a few points."""
        if self.kind == "categorical":
            return list(self.choices)
        low, high = float(self.low), float(self.high)
        if self.step:
            n = int(math.floor((high - low) / self.step + 1e-9)) + 1
            if n > MAX_GRID_VALUES:
                raise ConfigError(f"knob {self.name!r}: --sampler grid would try {n} values "
                                  f"of it (at most {MAX_GRID_VALUES}); give a larger step or "
                                  "another sampler")
            values = [low + i * self.step for i in range(n)]
        elif self.log:
            values = [low * (high / low) ** (i / (GRID_POINTS - 1)) for i in range(GRID_POINTS)]
        else:
            values = [low + (high - low) * i / (GRID_POINTS - 1) for i in range(GRID_POINTS)]
        if self.kind == "int":
            return sorted({int(round(v)) for v in values})
        return sorted(set(values))

    def to_dict(self) -> dict[str, Any]:
        """The knob as its TOML table (what the JSON report's ``space`` holds)."""
        if self.kind == "categorical":
            return {"kind": self.kind, "choices": list(self.choices)}
        out: dict[str, Any] = {"kind": self.kind, "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass(frozen=True)
class ProgramSpace:
    """The knobs, in the order declared; checked against the program's signature."""

    knobs: tuple[Knob, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.knobs)

    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any], fn: Callable[..., Any]) -> ProgramSpace:
        """From a TOML file's path or an already parsed mapping (knob name → table)."""
        if isinstance(source, Mapping):
            return cls.from_mapping(source, fn)
        return cls.from_toml(source, fn)

    @classmethod
    def from_toml(cls, path: str | Path, fn: Callable[..., Any]) -> ProgramSpace:
        """``[knob.NAME]`` tables; nothing else may be in the file."""
        p = Path(path).expanduser()
        try:
            data = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"--space {path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--space {path}: cannot be read ({exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"--space {path}: not a TOML file ({exc})") from None
        extra = set(data) - {"knob"}
        if extra:
            raise ConfigError(f"--space {path}: unknown table(s) {', '.join(sorted(extra))}; "
                              "declare each knob as [knob.NAME]")
        knobs = data.get("knob")
        if not isinstance(knobs, dict) or not knobs:
            raise ConfigError(f"--space {path}: no [knob.NAME] table")
        try:
            return cls.from_mapping(knobs, fn)
        except ConfigError as exc:
            raise ConfigError(f"--space {path}: {exc}") from None

    @classmethod
    def from_mapping(cls, knobs: Mapping[str, Any], fn: Callable[..., Any]) -> ProgramSpace:
        """Knob name → ``{"kind", "low", "high", "log", "step", "choices"}``."""
        if not isinstance(knobs, Mapping) or not knobs:
            raise ConfigError("the space declares no knob")
        defaults = keyword_defaults(fn)
        out = []
        for name, table in knobs.items():
            knob = _knob(str(name), table)
            if knob.name not in defaults:
                raise ConfigError(
                    f"knob {knob.name!r}: {_fn_name(fn)} takes no keyword argument "
                    f"{knob.name!r} with a default (it takes: "
                    f"{', '.join(defaults) or 'none'})")
            _check_default(knob, defaults[knob.name])
            out.append(knob)
        return cls(tuple(out))

    def suggest(self, trial: Any) -> dict[str, Any]:
        return {k.name: k.suggest(trial) for k in self.knobs}

    def grid(self) -> dict[str, list[Any]]:
        """The grid sampler's search space (each knob's :meth:`Knob.grid`)."""
        return {k.name: k.grid() for k in self.knobs}

    def defaults(self, fn: Callable[..., Any]) -> dict[str, Any]:
        """The program's own values of the knobs: the baseline, trial 0."""
        defaults = keyword_defaults(fn)
        return {k.name: defaults[k.name] for k in self.knobs}

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {k.name: k.to_dict() for k in self.knobs}


def keyword_defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    """The parameters ``fn`` can be called with by keyword that have a default."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{_fn_name(fn)}: its signature cannot be read ({exc})") from None
    return {p.name: p.default for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty}


def _knob(name: str, table: Any) -> Knob:
    if not isinstance(table, Mapping):
        raise ConfigError(f"knob {name!r} must be a table ([knob.{name}]), got {table!r}")
    kind = table.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"knob {name!r}: kind must be one of {', '.join(KINDS)}, "
                          f"got {kind!r}")
    unknown = set(table) - _KEYS[kind]
    if unknown:
        raise ConfigError(f"knob {name!r}: unknown key(s) {', '.join(sorted(unknown))} for "
                          f"kind {kind!r} (allowed: {', '.join(sorted(_KEYS[kind]))})")
    if kind == "categorical":
        choices = table.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"knob {name!r}: choices must be a non-empty list")
        if any(not isinstance(c, str | int | float | bool) for c in choices):
            raise ConfigError(f"knob {name!r}: choices must be strings, numbers or booleans")
        if len(choices) > MAX_CHOICES:
            raise ConfigError(f"knob {name!r}: {len(choices)} choices; at most {MAX_CHOICES} "
                              "(every trial stores them all) - use an int knob with low and "
                              "high for a numeric range")
        if any(isinstance(c, float) and not math.isfinite(c) for c in choices):
            raise ConfigError(f"knob {name!r}: choices must be finite numbers")
        if len(set(map(repr, choices))) != len(choices):
            raise ConfigError(f"knob {name!r}: choices repeat a value")
        # Optuna finds a value among the choices by ==, where 1 == 1.0 == true: a trial
        # given 1.0 would be stored (and reported) as the 1 before it
        equal = [(a, b) for i, a in enumerate(choices) for b in choices[:i] if a == b]
        if equal:
            raise ConfigError(f"knob {name!r}: choices {equal[0][1]!r} and {equal[0][0]!r} "
                              "are equal in Python (Optuna cannot tell them apart); keep one")
        return Knob(name, kind, choices=tuple(choices))
    number = int if kind == "int" else (int, float)
    values = {}
    for key in ("low", "high"):
        if key not in table:
            raise ConfigError(f"knob {name!r}: {kind} knob needs {key}")
    for key in ("low", "high", "step"):
        v = table.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, number) or not math.isfinite(v):
            raise ConfigError(f"knob {name!r}: {key} must be {'a whole' if kind == 'int' else 'a'}"
                              f" number, got {v!r}")
        values[key] = v
    log = table.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"knob {name!r}: log must be true or false, got {log!r}")
    low, high, step = values["low"], values["high"], values.get("step")
    if low > high:
        raise ConfigError(f"knob {name!r}: low {low} > high {high}")
    if log and low <= 0:
        raise ConfigError(f"knob {name!r}: a log range needs low > 0, got {low}")
    if step is not None and step <= 0:
        raise ConfigError(f"knob {name!r}: step must be > 0, got {step}")
    if step is not None and log:
        raise ConfigError(f"knob {name!r}: step and log cannot be combined")
    return Knob(name, kind, low=low, high=high, log=log, step=step)


def _check_default(knob: Knob, default: Any) -> None:
    """The function's default must be a value of the knob's kind (it is trial 0)."""
    if knob.kind == "categorical":
        if default not in knob.choices:
            raise ConfigError(f"knob {knob.name!r}: the function's default {default!r} is not "
                              "one of its choices")
        return
    ok = (isinstance(default, int) if knob.kind == "int" else isinstance(default, int | float)) \
        and not isinstance(default, bool)
    if not ok:
        raise ConfigError(f"knob {knob.name!r} is declared {knob.kind} but the function's "
                          f"default is {default!r}")


def _fn_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
