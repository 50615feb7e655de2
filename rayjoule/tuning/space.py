"""The tuner's search space: which settings Optuna may vary, and within what bounds.

Each dimension is either fixed (``--mode actors``, ``--tasks 8``) or a range
(``--tasks 4:128``). ``mode`` and ``num_cpus`` only mean something on Ray, so
they are suggested only for Ray trials (a conditional space Optuna handles).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rayjoule.core.config import MODES, framework_names
from rayjoule.core.errors import ConfigError

#: num_cpus values tried by the exhaustive grid sampler
NUM_CPUS_GRID = (0.25, 0.5, 1.0, 2.0)
#: most values of one dimension, and points of the whole grid, the grid sampler takes
#: (Optuna's GridSampler lists every point up front)
MAX_GRID_VALUES = 10_000
MAX_GRID_POINTS = 1_000_000


@dataclass(frozen=True)
class Range:
    """An inclusive numeric range; ``low == high`` means fixed."""

    low: float
    high: float

    @property
    def fixed(self) -> bool:
        return self.low == self.high


def parse_range(name: str, text: str, kind: type = int) -> Range:
    """``"8"`` → fixed 8, ``"4:128"`` → 4..128. Empty or inverted ranges are ConfigErrors.

    >>> parse_range("tasks", "4:128")
    Range(low=4, high=128)
    """
    parts = str(text).split(":")
    if len(parts) not in (1, 2) or any(not p.strip() for p in parts):
        raise ConfigError(f"--{name.replace('_', '-')} expects N or LOW:HIGH, got {text!r}")
    what = "a whole number" if kind is int else "a number"
    try:
        values = [_number(p, kind) for p in parts]
    except ValueError:
        raise ConfigError(f"--{name.replace('_', '-')}: {text!r} is not {what} or "
                          "LOW:HIGH range") from None
    if not all(math.isfinite(v) for v in values):
        raise ConfigError(f"--{name.replace('_', '-')} must be finite numbers, got {text!r}")
    if kind is int:  # 1e3 is a whole number too (as predict's --at takes it)
        if any(v != int(v) for v in values):
            raise ConfigError(f"--{name.replace('_', '-')}: {text!r} is not {what} or "
                              "LOW:HIGH range")
        values = [int(v) for v in values]
    low, high = values[0], values[-1]
    if low > high:
        raise ConfigError(f"--{name.replace('_', '-')} range {text!r} is inverted (low > high)")
    if low <= 0:
        raise ConfigError(f"--{name.replace('_', '-')} must be > 0, got {text!r}")
    return Range(low, high)


def _number(text: str, kind: type) -> float:
    """An exact int where the text is one (no float rounding past 2**53), else a float."""
    if kind is int:
        try:
            return int(text)
        except ValueError:
            pass
    return float(text)


def parse_stage_ranges(name: str, text: str, stages: Sequence[str],
                       kind: type = int) -> dict[str, Range]:
    """``"1:64"`` → every stage 1..64; ``"pca=1:8,train=1:32"`` → those stages (the others
    keep ``default``'s range, see :class:`SearchSpace`). Unknown stages are ConfigErrors.

    >>> parse_stage_ranges("tasks", "a=1:8,b=4", ["a", "b"])
    {'a': Range(low=1, high=8), 'b': Range(low=4, high=4)}
    """
    if "=" not in str(text):
        one = parse_range(name, text, kind)
        return {stage: one for stage in stages}
    out: dict[str, Range] = {}
    for item in str(text).split(","):
        stage, _, value = item.partition("=")
        stage = stage.strip()
        if stage not in stages:
            raise ConfigError(f"unknown stage {stage!r} in --{name.replace('_', '-')} "
                              f"(stages: {', '.join(stages)})")
        out[stage] = parse_range(f"{name} of stage {stage}", value, kind)
    return out


@dataclass(frozen=True)
class SearchSpace:
    """Frameworks, per-stage tasks and CPUs, concurrency and Ray's mode.

    ``tasks`` and ``num_cpus`` are one Range for a single-stage workload (Optuna parameters
    ``tasks``/``num_cpus``) or stage → Range for a pipeline (``tasks.<stage>``, …).
    """

    frameworks: tuple[str, ...]
    tasks: Range | Mapping[str, Range]
    concurrency: Range
    num_cpus: Range | Mapping[str, Range]
    modes: tuple[str, ...]

    @property
    def per_stage(self) -> bool:
        return isinstance(self.tasks, Mapping) and len(self.tasks) > 1

    def _stage_ranges(self, ranges: Range | Mapping[str, Range]) -> dict[str, Range]:
        if isinstance(ranges, Range):
            return {"": ranges}
        if len(ranges) == 1:
            return {"": next(iter(ranges.values()))}
        return dict(ranges)

    def __post_init__(self) -> None:
        if not self.frameworks:
            raise ConfigError("--frameworks is empty")
        known = framework_names()
        for fw in self.frameworks:
            if fw not in known:
                raise ConfigError(f"unknown framework {fw!r}; known: {', '.join(known)}")
        for mode in self.modes:
            if mode not in MODES:
                raise ConfigError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Ask an Optuna trial for one point of the space (RunConfig fields)."""
        params: dict[str, Any] = {}
        params["framework"] = (trial.suggest_categorical("framework", list(self.frameworks))
                               if len(self.frameworks) > 1 else self.frameworks[0])
        params["tasks"] = _per_stage({
            stage: _int(trial, _name("tasks", stage), r, log=True)
            for stage, r in self._stage_ranges(self.tasks).items()})
        params["concurrency"] = _int(trial, "concurrency", self.concurrency, log=False)
        if params["framework"] == "ray":
            params["mode"] = (trial.suggest_categorical("mode", list(self.modes))
                              if len(self.modes) > 1 else self.modes[0])
            params["num_cpus"] = _per_stage({
                stage: float(r.low) if r.fixed else
                trial.suggest_float(_name("num_cpus", stage), r.low, r.high)
                for stage, r in self._stage_ranges(self.num_cpus).items()})
        else:
            params["mode"] = "tasks"
        return params

    def grid(self) -> dict[str, list[Any]]:
        """A finite grid for the exhaustive baseline: powers of two for tasks, every concurrency."""
        grid: dict[str, list[Any]] = {}
        if len(self.frameworks) > 1:
            grid["framework"] = list(self.frameworks)
        for stage, r in self._stage_ranges(self.tasks).items():
            if not r.fixed:
                grid[_name("tasks", stage)] = _powers_of_two(int(r.low), int(r.high))
        if not self.concurrency.fixed:
            span = int(self.concurrency.high) - int(self.concurrency.low) + 1
            if span > MAX_GRID_VALUES:
                raise ConfigError(f"--sampler grid tries every concurrency: {span} values of "
                                  f"--concurrency; at most {MAX_GRID_VALUES}")
            grid["concurrency"] = list(range(int(self.concurrency.low),
                                             int(self.concurrency.high) + 1))
        if "ray" in self.frameworks:
            if len(self.modes) > 1:
                grid["mode"] = list(self.modes)
            for stage, r in self._stage_ranges(self.num_cpus).items():
                if not r.fixed:
                    grid[_name("num_cpus", stage)] = [
                        c for c in NUM_CPUS_GRID if r.low <= c <= r.high] or [r.low, r.high]
        return grid


def _name(dimension: str, stage: str) -> str:
    """The Optuna parameter of one stage's dimension (plain for single-stage workloads)."""
    return f"{dimension}.{stage}" if stage else dimension


def _per_stage(values: dict[str, Any]) -> Any:
    """One value for a single-stage workload, stage → value for a pipeline."""
    return values[""] if "" in values else values


def _int(trial: Any, name: str, r: Range, log: bool) -> int:
    if r.fixed:
        return int(r.low)
    return trial.suggest_int(name, int(r.low), int(r.high), log=log)


def _powers_of_two(low: int, high: int) -> list[int]:
    values, v = [low], 1
    while v <= high:
        if v > low:
            values.append(v)
        v *= 2
    if values[-1] != high:
        values.append(high)
    return values
