"""``@rayjoule.measured``: a driver function metered like a :func:`~.block.measure` block on
every call (a program's entry point, a tuner's objective)."""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

from rayjoule.core.errors import ConfigError, RayjouleError
from rayjoule.core.result import RunResult
from rayjoule.runs.measured_block.block import Measurement, measure


class MeasuredFunction:
    """A driver function that runs inside :func:`measure` each time it is called.

    It returns what the function returns; ``last`` is the Measurement of the latest call
    (set as the call starts, so it is there even when the call raised) and
    ``last_result`` its RunResult.
    """

    def __init__(self, fn: Callable[..., Any], name: str, options: dict[str, Any]) -> None:
        Measurement(name, **options)  # check the options now, not at the first call
        functools.update_wrapper(self, fn)
        self._fn, self.name, self._options = fn, name, options
        self.last: Measurement | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        m = measure(self.name, **self._options)
        self.last = m
        with m:
            return self._fn(*args, **kwargs)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        return self if instance is None else types.MethodType(self, instance)

    @property
    def last_result(self) -> RunResult:
        if self.last is None:
            raise RayjouleError(f"{self.name} has not been called yet")
        return self.last.result


def measured(fn: Callable[..., Any] | None = None, /, *, name: str | None = None,
             **options: Any) -> Any:
    """Decorate a driver function so each call is metered like a :func:`measure` block.

    ``@measured`` or ``@measured(name="etl", meter="tdp", db=None)``; the name defaults to
    the function's qualified name, the other options are :func:`measure`'s.
    """
    def wrap(f: Callable[..., Any]) -> MeasuredFunction:
        if not callable(f):
            raise ConfigError(f"measured() decorates a function, not {type(f).__name__}")
        return MeasuredFunction(f, f.__qualname__ if name is None else name, options)

    return wrap(fn) if fn is not None else wrap
