"""The workload contract: a named bundle of plain map/reduce functions plus typed parameters.

A :class:`Workload` holds *module-level* functions only, so pickle (and Ray's cloudpickle,
Lithops, multiprocessing) ship it by reference: a worker imports ``workloads.pi`` and finds
``map`` there; nothing big travels with a task. Every framework runs the same four steps::

    size, params = wl.validate(size, tasks, params)    # fills defaults, converts, checks
    chunks = wl.partition(tasks, size, seed, params)   # exactly ``tasks`` small chunks
    partials = [wl.map(chunk) for chunk in chunks]     # anywhere, in any order
    summary = wl.summary(wl.reduce(partials))          # JSON-safe dict

Determinism (the same summary for any ``tasks``) comes from fixed-size *blocks* of work: each
block draws its random numbers from ``numpy.random.default_rng([seed, block])`` and tasks get
contiguous runs of blocks (:func:`split_blocks`); ``reduce`` only combines exact integers or
per-block values put back in block order, so grouping never changes a bit of the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ParamValue = int | float | str | None
Size = int | float


class WorkloadError(Exception):
    """A workload was asked for something it cannot do; the message says what to change."""


@dataclass(frozen=True)
class Param:
    """One tunable workload parameter: its default, declared type and allowed values.

    ``type`` converts CLI strings (``--param max_iter=300``), so values from argv, JSON and
    Python all end up the same type. ``minimum`` is inclusive, ``above`` exclusive.
    """

    name: str
    type: type
    default: ParamValue
    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    above: float | None = None

    def convert(self, value: Any, *, what: str = "") -> ParamValue:
        """Return ``value`` as this parameter's type, or raise WorkloadError naming it."""
        label = what or f"parameter {self.name!r}"
        if value is None:
            if self.default is None:
                return None
            raise WorkloadError(f"{label} needs a value ({self.type.__name__})")
        converted = _convert(value, self.type, label)
        if self.choices is not None and converted not in self.choices:
            raise WorkloadError(f"{label} must be one of {', '.join(self.choices)}, not {value!r}")
        if isinstance(converted, int | float):
            if self.minimum is not None and converted < self.minimum:
                raise WorkloadError(f"{label} must be >= {self.minimum:g}, not {value!r}")
            if self.above is not None and converted <= self.above:
                raise WorkloadError(f"{label} must be > {self.above:g}, not {value!r}")
        return converted


def _convert(value: Any, kind: type, label: str) -> ParamValue:
    """Convert one value to int, float or str; bools are never numbers here."""
    bad = WorkloadError(f"{label} must be {kind.__name__}, not {value!r}")
    if isinstance(value, bool):
        raise bad
    if kind is str:
        if not isinstance(value, str):
            raise bad
        return value
    if isinstance(value, str):
        try:
            value = int(value.strip()) if kind is int else float(value.strip())
        except ValueError:
            try:  # "1e8" is a fine way to write an integer size
                value = float(value.strip())
            except ValueError:
                raise bad from None
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise bad
    if kind is int:
        if value != int(value):
            raise bad
        return int(value)
    return float(value)


Partition = Callable[[int, Size, int, dict[str, ParamValue]], list[Any]]
Prepare = Callable[[Size | None, dict[str, ParamValue]], Size]


class Parameterised:
    """Typed parameters by name, shared by workloads and pipelines (``params``, ``name``)."""

    kind_label = "workload"
    name: str
    params: tuple[Param, ...]

    def param(self, name: str) -> Param:
        """The declared parameter ``name``; unknown names raise WorkloadError listing the known."""
        for param in self.params:
            if param.name == name:
                return param
        known = ", ".join(p.name for p in self.params) or "none"
        raise WorkloadError(
            f"unknown parameter {name!r} for {self.kind_label} {self.name!r} (known: {known})"
        )

    def defaults(self) -> dict[str, ParamValue]:
        """Every parameter at its default value."""
        return {p.name: p.default for p in self.params}

    def resolve_size_params(self, size: Any,
                            params: Mapping[str, Any] | None) -> tuple[Size, dict[str, ParamValue]]:
        """Defaults filled, values converted, size checked, then ``prepare`` (or the default
        size): the one rule for workloads and pipelines alike."""
        values = self.defaults()
        for name, value in (params or {}).items():
            values[name] = self.param(name).convert(value)
        if size is not None:
            size_param = Param("size", self.size_type, self.default_size, self.size_meaning,
                               minimum=self.min_size)
            size = size_param.convert(size, what=f"size of {self.name!r}")
        if self.prepare is not None:
            return self.prepare(size, values), values
        return (self.default_size if size is None else size), values


@dataclass(frozen=True)
class Workload(Parameterised):
    """A registered application: metadata, typed parameters and the four map/reduce steps.

    * ``partition(tasks, size, seed, params) -> list[chunk]`` returns exactly ``tasks`` chunks
      (some may be empty when there is less work than tasks); chunks are small and picklable.
    * ``map(chunk) -> partial`` is a module-level function: it generates or reads its own data.
    * ``reduce(partials) -> result`` accepts the partials in any order.
    * ``summary(result) -> dict`` holds only JSON-safe ints, floats and strings.
    * ``prepare(size, params) -> size`` (optional) finishes validation that needs more than one
      parameter or outside state (airbnb counts the rows of its data file) and resolves the
      default size; without it the default is ``default_size``.
    """

    name: str
    description: str
    size_meaning: str
    default_size: Size
    params: tuple[Param, ...]
    partition: Partition
    map: Callable[[Any], Any]
    reduce: Callable[[list[Any]], Any]
    summary: Callable[[Any], dict[str, Any]]
    size_type: type = int
    min_size: float = 1
    prepare: Prepare | None = field(default=None, compare=False)

    def validate(
        self,
        size: Any = None,
        tasks: Any = 1,
        params: Mapping[str, Any] | None = None,
        seed: Any = 0,
    ) -> tuple[Size, dict[str, ParamValue]]:
        """Fill defaults, convert strings and check ranges; return ``(size, params)``.

        >>> from workloads import get
        >>> get("mandelbrot").validate("64", 2, {"max_iter": "50"})[1]["max_iter"]
        50
        """
        check_tasks(tasks)
        check_seed(seed)
        return self.resolve_size_params(size, params)


def check_tasks(tasks: Any) -> int:
    """``tasks`` must be an int >= 1 (strings from a command line are converted)."""
    value = Param("tasks", int, 1, "number of tasks", minimum=1).convert(tasks, what="tasks")
    assert isinstance(value, int)
    return value


def check_seed(seed: Any) -> int:
    """``seed`` must be an int >= 0, because it seeds ``numpy.random.SeedSequence``."""
    value = Param("seed", int, 0, "random seed", minimum=0).convert(seed, what="seed")
    assert isinstance(value, int)
    return value


def parse_param(workload: Workload, item: str) -> tuple[str, ParamValue]:
    """Parse one ``--param key=value`` string into ``(key, typed value)``.

    >>> from workloads import get
    >>> parse_param(get("mandelbrot"), "max_iter=300")
    ('max_iter', 300)
    """
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise WorkloadError(f"parameter {item!r} is not of the form key=value")
    return key, workload.param(key).convert(raw)


def parse_params(workload: Workload, items: Sequence[str]) -> dict[str, ParamValue]:
    """Parse several ``key=value`` strings; a later key overrides an earlier one."""
    return dict(parse_param(workload, item) for item in items)


def split_even(n: int, parts: int) -> list[tuple[int, int]]:
    """Split ``range(n)`` into exactly ``parts`` contiguous ``(start, stop)`` ranges.

    Sizes differ by at most one; when ``parts > n`` the trailing ranges are empty.

    >>> split_even(5, 3)
    [(0, 2), (2, 4), (4, 5)]
    >>> split_even(1, 3)
    [(0, 1), (1, 1), (1, 1)]
    """
    base, extra = divmod(n, parts)
    bounds, start = [], 0
    for part in range(parts):
        stop = start + base + (1 if part < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def split_blocks(total: int, block: int, parts: int) -> list[tuple[int, int]]:
    """Hand ``ceil(total / block)`` fixed blocks to ``parts`` tasks as ``(first, stop)`` block runs.

    The blocks, not the tasks, define the work, which is why results do not depend on
    ``parts``. Block ``b`` covers items ``[b * block, min((b + 1) * block, total))``.
    """
    return split_even(-(-total // block), parts)


def block_items(b: int, block: int, total: int) -> int:
    """How many items block ``b`` holds (the last block may be short)."""
    return max(0, min(block, total - b * block))
