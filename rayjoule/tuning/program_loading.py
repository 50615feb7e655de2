"""Finding a user's program: ``package.module:FUNCTION`` or ``path/to/file.py:FUNCTION``.

Why here and not in ``runs``: only the program tuner turns a command-line string into a
function. Every way of getting it wrong is bad input (one line, exit 2) found before Ray
starts.

Ray's workers must import what the program's tasks use. A module given by name is pickled
by reference as usual (Ray puts the driver's working directory on its workers' path). A
file is loaded the way ``python file.py`` runs a script: under a private name that is not
kept in ``sys.modules``, so cloudpickle ships its functions and classes to the workers by
value, exactly as for a script's own ``__main__`` code.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rayjoule.core.errors import ConfigError
from rayjoule.tuning.program_space import keyword_defaults

DRIVERS = ("auto", "inline", "process")


@dataclass(frozen=True)
class Program:
    """A loaded program: the function, where it came from, and how to name it."""

    fn: Callable[..., Any]
    #: ``module:FUNCTION`` or ``/abs/path/file.py:FUNCTION`` (what a child driver loads);
    #: empty for a function handed to the Python API
    spec: str
    name: str
    #: the folder of a file program (on the child driver's and its workers' path)
    folder: str | None = None


def load_program(spec: str) -> Program:
    """``package.module:FUNCTION`` or ``path/to/file.py:FUNCTION`` → :class:`Program`."""
    if not isinstance(spec, str) or spec.count(":") < 1:
        raise ConfigError(f"--program must be package.module:FUNCTION or "
                          f"path/to/file.py:FUNCTION, got {spec!r}")
    where, _, attr = spec.rpartition(":")
    if not where or not attr.isidentifier():
        raise ConfigError(f"--program {spec!r}: expected MODULE:FUNCTION with a function name "
                          "after the last colon")
    if where.endswith(".py") or os.sep in where or "/" in where:
        path = Path(where).expanduser().resolve()
        module = _load_file(path, spec)
        full, folder = f"{path}:{attr}", str(path.parent)
    else:
        module = _import(where, spec)
        full, folder = f"{where}:{attr}", None
    fn = getattr(module, attr, None)
    if fn is None:
        raise ConfigError(f"--program {spec!r}: {where} has no attribute {attr!r}")
    if not callable(fn):
        raise ConfigError(f"--program {spec!r}: {attr!r} is not callable")
    if isinstance(fn, type):
        raise ConfigError(f"--program {spec!r}: {attr!r} is a class; give a function (its "
                          "keyword arguments are the knobs)")
    check_program(fn, spec)
    return Program(fn=fn, spec=full, name=attr, folder=folder)


def program_of(fn: Callable[..., Any], name: str | None = None) -> Program:
    """A function handed to the Python API; its ``spec`` lets a child driver import it."""
    if not callable(fn):
        raise ConfigError(f"tune_program needs a function, got {type(fn).__name__}")
    check_program(fn, getattr(fn, "__qualname__", repr(fn)))
    module = getattr(fn, "__module__", None)
    qual = getattr(fn, "__qualname__", "")
    spec = f"{module}:{qual}" if module and module != "__main__" and qual.isidentifier() \
        else ""
    return Program(fn=fn, spec=spec, name=name or qual or "program")


def check_program(fn: Callable[..., Any], label: str) -> None:
    if not keyword_defaults(fn):
        raise ConfigError(f"--program {label!r}: the function has no keyword arguments with "
                          "defaults; its knobs are its keyword arguments, its defaults the "
                          "baseline")


def calls_ray_init(fn: Callable[..., Any]) -> bool:
    """Whether the function's own code calls ``ray.init(...)`` (what ``driver="auto"`` asks).

    >>> def etl():
    ...     import ray
    ...     ray.init()
    >>> calls_ray_init(etl), calls_ray_init(calls_ray_init)
    (True, False)
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return False
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
               and n.func.attr == "init" and isinstance(n.func.value, ast.Name)
               and n.func.value.id == "ray" for n in ast.walk(tree))


def choose_driver(driver: str, fn: Callable[..., Any]) -> str:
    """``inline`` or ``process`` for ``driver`` (``auto``: process when fn calls ray.init)."""
    if driver not in DRIVERS:
        raise ConfigError(f"--driver must be one of {', '.join(DRIVERS)}, got {driver!r}")
    if driver != "auto":
        return driver
    return "process" if calls_ray_init(fn) else "inline"


def _import(name: str, spec: str) -> Any:
    # ``rayjoule tune`` (a console script) does not have the working directory on its
    # path the way ``python -m`` does; a program module beside the user is found anyway
    cwd = os.getcwd()
    try:
        return _run_import(lambda: importlib.import_module(name), spec, name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if cwd in sys.path or "" in sys.path or not name.startswith(missing):
            raise ConfigError(f"--program {spec!r}: module {name!r} cannot be imported "
                              f"({exc})") from None
    sys.path.insert(0, cwd)
    try:
        return _run_import(lambda: importlib.import_module(name), spec, name)
    except ImportError as exc:
        sys.path.remove(cwd)
        raise ConfigError(f"--program {spec!r}: module {name!r} cannot be imported "
                          f"({exc})") from None


def _run_import(load: Callable[[], Any], spec: str, what: str) -> Any:
    """Run a program module's top level: whatever it raises — sys.exit() included, which
    would otherwise end the tune with the module's status and no word — is bad input (one
    line); a missing module (ModuleNotFoundError) is left to the caller."""
    try:
        return load()
    except ModuleNotFoundError:
        raise
    except SystemExit as exc:
        raise ConfigError(f"--program {spec!r}: {what} called sys.exit({exc.code!r}) while "
                          "being imported; a program's module must only define its "
                          "function (guard script code with if __name__ == '__main__')"
                          ) from None
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
        raise ConfigError(f"--program {spec!r}: importing {what} failed: {text}") from None


def _load_file(path: Path, spec: str) -> Any:
    if not path.is_file():
        raise ConfigError(f"--program {spec!r}: no such file {path}")
    if path.suffix != ".py":
        raise ConfigError(f"--program {spec!r}: {path.name} is not a .py file")
    name = f"rayjoule_program_{abs(hash(str(path))):x}"
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ConfigError(f"--program {spec!r}: {path} cannot be loaded as a module")
    module = importlib.util.module_from_spec(loader_spec)
    # present while it runs (dataclasses and typing look their module up), then removed so
    # that cloudpickle ships its functions by value, as for a script's __main__
    sys.modules[name] = module
    folder = str(path.parent)
    added = folder not in sys.path
    if added:  # its sibling modules import as they would for ``python file.py``
        sys.path.insert(0, folder)
    loader = loader_spec.loader
    try:
        _run_import(lambda: loader.exec_module(module), spec, path.name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"--program {spec!r}: importing {path.name} failed: "
                          f"ModuleNotFoundError: {exc}") from None
    finally:
        sys.modules.pop(name, None)
    return module
