"""Which metering a run gets: the driver's host, every host of a Ray cluster, the calls,
or what a third party registered for its framework.

A framework whose work the built-in rules do not see (a plug-in executor running on
machines of its own) registers its :class:`~rayjoule.metering.base.Metering` under the
entry-point group :data:`METERING_GROUP`, named after the framework::

    [project.entry-points."rayjoule.metering"]
    dask = "rayjoule_dask:DaskMetering"
"""

from __future__ import annotations

import importlib.metadata

from rayjoule.core.config import FRAMEWORKS, RunConfig
from rayjoule.core.errors import ConfigError
from rayjoule.metering.base import Metering

METERING_GROUP = "rayjoule.metering"


def metering_for(config: RunConfig, *, remote_calls: bool = False) -> Metering:
    """The metering registered for ``config.framework``, else the built-in rules: Ray → a
    meter actor per physical host; a remote function platform → each call meters itself;
    otherwise the driver's own host (native pools, Lithops localhost). A built-in
    framework's name always gets the built-in rules."""
    registered = None if config.framework in FRAMEWORKS else registered_metering(
        config.framework)
    if registered is not None:
        return registered.from_config(config)
    if config.framework == "ray":
        from rayjoule.metering.ray_cluster import RayMetering

        return RayMetering.from_config(config)
    if remote_calls:
        from rayjoule.metering.calls import CallMetering

        return CallMetering.from_config(config)
    from rayjoule.metering.local import LocalMetering

    return LocalMetering.from_config(config)


def registered_metering(framework: str) -> type[Metering] | None:
    """The Metering class registered for ``framework`` under :data:`METERING_GROUP`, or None.

    Raises :class:`ConfigError` naming the entry point when it fails to load or is not a
    :class:`Metering` subclass.
    """
    try:
        eps = [ep for ep in importlib.metadata.entry_points(group=METERING_GROUP)
               if ep.name == framework]
    except Exception:  # a broken distribution's metadata must not break the built-ins
        return None
    if not eps:
        return None
    label = f"entry point {METERING_GROUP}:{framework} ({eps[0].value})"
    try:
        obj = eps[0].load()
    except Exception as err:
        raise ConfigError(f"{label} failed to load: {type(err).__name__}: {err}") from err
    if not (isinstance(obj, type) and issubclass(obj, Metering)):
        raise ConfigError(f"{label} is not a rayjoule.metering.Metering subclass")
    return obj
