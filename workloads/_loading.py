"""User workloads and pipelines: by import path (``package.module:NAME``) or entry point.

A user's object must honour the same contract as a built-in one; what is missing is named in
a single :class:`WorkloadError` line, because a traceback from deep inside a framework worker
is the worst place to learn that ``map`` was never defined::

    my.mod:WL is not a workload: missing partition(), reduce()

Third-party packages register objects under the entry-point groups :data:`WORKLOAD_GROUP` and
:data:`PIPELINE_GROUP` (``[project.entry-points."rayjoule.workloads"] name = "pkg.mod:WL"``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any

from workloads._base import Workload, WorkloadError
from workloads._pipeline import Pipeline

WORKLOAD_GROUP = "rayjoule.workloads"
PIPELINE_GROUP = "rayjoule.pipelines"

_WORKLOAD_PARTS = ("partition", "map", "reduce", "summary")
_PIPELINE_PARTS = ("stages", "source", "summary")


def is_import_path(text: str) -> bool:
    """Whether ``text`` looks like ``package.module:NAME`` rather than a registered name."""
    module, sep, attr = text.partition(":")
    return bool(sep and module and attr)


def load_path(path: str) -> Any:
    """Import ``package.module:NAME`` (NAME may be dotted) and return that object.

    >>> load_path("workloads.primes:WORKLOAD").name
    'primes'
    """
    module_name, sep, attr = path.partition(":")
    if not (sep and module_name and attr):
        raise WorkloadError(f"{path!r} is not an import path of the form package.module:NAME")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and (module_name == err.name or module_name.startswith(err.name + ".")):
            raise WorkloadError(f"module {module_name} not found (from {path!r}; is it "
                                "installed or on PYTHONPATH?)") from None
        raise WorkloadError(f"importing {module_name} failed: {err}") from err
    except Exception as err:  # a user module may raise anything at import; say which
        raise WorkloadError(f"importing {module_name} failed: "
                            f"{type(err).__name__}: {err}") from err
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise WorkloadError(f"{module_name} has no attribute {attr} (from {path!r})")
        obj = getattr(obj, part)
    return obj


def check_workload(obj: Any, label: str) -> Workload:
    """``obj`` if it is a complete :class:`Workload`; else one line naming what is wrong."""
    if isinstance(obj, Pipeline):
        raise WorkloadError(f"{label} is a pipeline, not a single-stage workload "
                            "(load it as a pipeline)")
    missing = [f"{part}()" for part in _WORKLOAD_PARTS if not callable(getattr(obj, part, None))]
    if missing:
        raise WorkloadError(f"{label} is not a workload: missing {', '.join(missing)}")
    if not isinstance(obj, Workload):
        raise WorkloadError(f"{label} is not a workload: it is a {type(obj).__name__}; "
                            "build one with workloads.Workload(...)")
    if not isinstance(obj.name, str) or not obj.name:
        raise WorkloadError(f"{label} is not a workload: its name must be a non-empty string")
    if obj.prepare is not None and not callable(obj.prepare):
        raise WorkloadError(f"{label} is not a workload: prepare is not callable")
    return obj


def check_pipeline(obj: Any, label: str) -> Pipeline:
    """``obj`` as a :class:`Pipeline`: a pipeline, or a workload wrapped as one."""
    from workloads._pipeline import as_pipeline

    if isinstance(obj, Pipeline):
        missing = [f"{p}()" for p in ("source", "summary") if not callable(getattr(obj, p))]
        if missing:
            raise WorkloadError(f"{label} is not a pipeline: missing {', '.join(missing)}")
        return obj
    if hasattr(obj, "stages") and not isinstance(obj, Workload):
        missing = [f"{p}()" if p != "stages" else p for p in _PIPELINE_PARTS
                   if not (getattr(obj, p, None) if p == "stages" else
                           callable(getattr(obj, p, None)))]
        detail = f"missing {', '.join(missing)}" if missing else (
            f"it is a {type(obj).__name__}; build one with workloads.Pipeline(...)")
        raise WorkloadError(f"{label} is not a pipeline: {detail}")
    return as_pipeline(check_workload(obj, label))


def entry_point(group: str, name: str) -> Any | None:
    """The object registered as ``name`` in ``group``, or None when nothing is."""
    for ep in importlib.metadata.entry_points(group=group):
        if ep.name == name:
            try:
                return ep.load()
            except Exception as err:  # a broken plugin must say which one it is
                raise WorkloadError(f"entry point {group}:{name} ({ep.value}) failed to load: "
                                    f"{type(err).__name__}: {err}") from err
    return None


def entry_point_names(group: str) -> list[str]:
    """Names registered in an entry-point group, sorted."""
    return sorted({ep.name for ep in importlib.metadata.entry_points(group=group)})
