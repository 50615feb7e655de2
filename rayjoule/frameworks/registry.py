"""Which executor runs a framework: the built-ins and third-party ones, by name.

Executors are registered under the entry-point group ``rayjoule.frameworks`` (as meters
are under ``rayjoule.meters`` and workloads under ``rayjoule.workloads``); the built-ins
are declared there in rayjoule's own ``pyproject.toml``. A third party declares its own::

    [project.entry-points."rayjoule.frameworks"]
    dask = "rayjoule_dask:DaskExecutor"

and proves it with :class:`rayjoule.testing.ExecutorContract`. Nothing is imported until
a name is asked for, so choosing ``native`` never imports Ray or Lithops. A built-in
name always means the built-in executor, even when the package's metadata is missing
(a source checkout that was never installed) or a plug-in reuses the name.
"""

from __future__ import annotations

import importlib
import importlib.metadata

from rayjoule.core.config import FRAMEWORK_GROUP, RunConfig, framework_names
from rayjoule.core.errors import ConfigError
from rayjoule.frameworks.base import Executor

#: the built-in executors, as declared under FRAMEWORK_GROUP in pyproject.toml
BUILTIN = {
    "native": "rayjoule.frameworks.native_executor:NativeExecutor",
    "ray": "rayjoule.frameworks.ray_executor:RayExecutor",
    "lithops": "rayjoule.frameworks.lithops_executor:LithopsExecutor",
}


def executor_class(name: str) -> type[Executor]:
    """The executor class registered as ``name``, imported now.

    Raises :class:`ConfigError` naming the available frameworks when nothing is registered
    under ``name``, and naming the entry point when it fails to load or is not an
    :class:`Executor` subclass.

    >>> executor_class("native").__name__
    'NativeExecutor'
    """
    if name in BUILTIN:
        target, label = BUILTIN[name], f"built-in framework {name!r}"
    else:
        target = _registered().get(name)
        if target is None:
            raise ConfigError(f"unknown framework {name!r}; available: "
                              f"{', '.join(framework_names())}")
        label = f"entry point {FRAMEWORK_GROUP}:{name} ({target})"
    module, _, attr = target.partition(":")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except Exception as err:  # a broken plug-in must say which one it is
        raise ConfigError(f"{label} failed to load: {type(err).__name__}: {err}") from err
    if not (isinstance(obj, type) and issubclass(obj, Executor)):
        raise ConfigError(f"{label} is not a rayjoule.frameworks.Executor subclass")
    return obj


def executor_for(config: RunConfig) -> Executor:
    """A new, unopened executor for ``config.framework`` (imports the framework lazily)."""
    return executor_class(config.framework)(config)


def _registered() -> dict[str, str]:
    """Entry-point name → ``module:attr`` of the executors registered by any distribution."""
    try:
        eps = importlib.metadata.entry_points(group=FRAMEWORK_GROUP)
    except Exception:  # a broken distribution's metadata must not hide the others
        return {}
    return {ep.name: ep.value for ep in eps}
