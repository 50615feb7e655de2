"""Which meters work on this host, which to use, and meters by name (incl. plug-ins).

Why probes only: detection must be cheap and must never fail — a broken
driver or a broken third-party plug-in is reported with its reason, not
raised. The choice is the best available CPU meter (rapl > perf > tdp: real
counters before a model) plus NVML when a GPU is there.

Third-party meters register a :class:`~meters.Meter` subclass under the
entry-point group ``rayjoule.meters``, e.g. in their ``pyproject.toml``::

    [project.entry-points."rayjoule.meters"]
    rocm = "rayjoule_rocm:RocmMeter"

They are listed and probed by :func:`detect` and built by :func:`get_meter`,
but never chosen automatically (a plug-in cannot know how it ranks).
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meters._base import Meter, MeterError, Probe
from meters._composite import CompositeMeter
from meters._nvml import NvmlMeter
from meters._perf import PerfMeter
from meters._rapl import RaplMeter
from meters._tdp import TdpMeter

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "rayjoule.meters"
BUILTIN: Mapping[str, type[Meter]] = {
    "rapl": RaplMeter,
    "perf": PerfMeter,
    "tdp": TdpMeter,
    "nvml": NvmlMeter,
}
#: CPU meters, best first; only the first available one is chosen.
CPU_ORDER = ("rapl", "perf", "tdp")
GPU_METERS = ("nvml",)


@dataclass(frozen=True)
class MeterInfo:
    """One meter as :func:`detect` saw it."""

    name: str
    available: bool
    kind: str
    domains: list[str]
    reason: str | None
    origin: str = "builtin"  # or "entry point <module:attr>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "available": self.available,
            "kind": self.kind,
            "domains": list(self.domains),
            "reason": self.reason,
            "origin": self.origin,
        }


@dataclass(frozen=True)
class Detection:
    """The result of :func:`detect`: what to use (``chosen``), what exists and why not."""

    chosen: list[str]
    meters: list[MeterInfo]
    skipped: dict[str, str] = field(default_factory=dict)
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)

    def info(self, name: str) -> MeterInfo:
        for m in self.meters:
            if m.name == name:
                return m
        raise KeyError(name)

    def create(self, options: Mapping[str, Mapping[str, Any]] | None = None) -> list[Meter]:
        """Construct the chosen meters (``options[name]`` are constructor keywords).

        If one fails, those already built are closed and the error is raised.
        """
        opts = {**self.options, **(options or {})}
        built: list[Meter] = []
        try:
            for name in self.chosen:
                built.append(get_meter(name, **dict(opts.get(name, {}))))
        except BaseException:
            for m in built:
                m.close()
            raise
        return built

    def create_composite(
        self, options: Mapping[str, Mapping[str, Any]] | None = None, prefix: bool = False
    ) -> CompositeMeter:
        """The chosen meters as one :class:`CompositeMeter`."""
        return CompositeMeter(self.create(options), prefix=prefix)

    def to_dict(self) -> dict[str, Any]:
        return {
            "meters": [m.to_dict() for m in self.meters],
            "chosen": list(self.chosen),
            "skipped": dict(self.skipped),
        }


def _entry_points() -> tuple[dict[str, type[Meter]], dict[str, MeterInfo]]:
    """Plug-in meter classes by name, and the broken ones as unavailable MeterInfo."""
    classes: dict[str, type[Meter]] = {}
    broken: dict[str, MeterInfo] = {}
    try:
        eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception as exc:  # a broken distribution's metadata must not break detection
        log.warning("cannot list %s entry points: %r", ENTRY_POINT_GROUP, exc)
        return classes, broken
    for ep in eps:
        origin = f"entry point {ep.value}"
        try:
            obj = ep.load()
            if not (isinstance(obj, type) and issubclass(obj, Meter)):
                raise TypeError(f"{ep.value} is not a meters.Meter subclass")
        except Exception as exc:
            broken[ep.name] = MeterInfo(ep.name, False, "measured", [],
                                        f"plug-in failed to load: {exc!r}", origin)
            continue
        if ep.name in BUILTIN:
            key = f"{ep.name}@{ep.value}"
            broken[key] = MeterInfo(
                key, False, obj.kind, [],
                f"plug-in name {ep.name!r} is taken by a built-in meter; rename it", origin)
            continue
        classes[ep.name] = obj
    return classes, broken


def meter_classes(entry_points: bool = True) -> dict[str, type[Meter]]:
    """Built-in meter classes by name, plus the plug-ins that load."""
    classes = dict(BUILTIN)
    if entry_points:
        plugins, _ = _entry_points()
        classes.update(plugins)
    return classes


def get_meter(name: str, **options: Any) -> Meter:
    """Construct the meter called ``name`` ("rapl", "perf", "tdp", "nvml" or a plug-in).

    >>> get_meter("tdp", scope="host").kind
    'modelled'
    """
    classes = dict(BUILTIN)
    if name not in classes:
        classes.update(meter_classes())
    try:
        cls = classes[name]
    except KeyError:
        raise MeterError(
            f"unknown meter {name!r}; known meters: {', '.join(sorted(classes))}"
        ) from None
    return cls(**options)


def _probe(cls: type[Meter], options: Mapping[str, Any]) -> Probe:
    try:  # Meter.probe never raises, but a plug-in may override it badly
        probe = cls.probe(**options)
        if isinstance(probe, Probe):
            return probe
        return Probe(False, f"probe returned {type(probe).__name__}, not Probe", cls.kind, [])
    except Exception as exc:
        return Probe(False, f"probe raised {exc!r}", getattr(cls, "kind", "measured"), [])


def detect(
    include_gpu: bool = True,
    *,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    classes: Mapping[str, type[Meter]] | None = None,
    entry_points: bool = True,
) -> Detection:
    """Probe every meter and choose the best CPU meter (rapl > perf > tdp) plus NVML.

    ``options[name]`` are passed to that meter's probe and, by
    :meth:`Detection.create`, to its constructor (e.g. ``{"rapl": {"root": path}}``).
    ``classes`` replaces the built-in table (tests); ``entry_points=False`` skips plug-ins.
    """
    opts: dict[str, Mapping[str, Any]] = dict(options or {})
    table: dict[str, type[Meter]] = dict(BUILTIN if classes is None else classes)
    broken: dict[str, MeterInfo] = {}
    plugins: set[str] = set()
    if entry_points:
        found, broken = _entry_points()
        for name, cls in found.items():
            if name not in table:
                table[name] = cls
                plugins.add(name)

    infos: list[MeterInfo] = []
    skipped: dict[str, str] = {}
    for name, cls in table.items():
        origin = "entry point" if name in plugins else "builtin"
        if name in GPU_METERS and not include_gpu:
            reason = "not probed: GPU metering not requested (include_gpu=False)"
            infos.append(MeterInfo(name, False, cls.kind, [], reason, origin))
            continue
        p = _probe(cls, opts.get(name, {}))
        infos.append(MeterInfo(name, p.available, p.kind, list(p.domains), p.reason, origin))
    infos.extend(broken.values())

    available = {m.name for m in infos if m.available}
    chosen: list[str] = []
    best_cpu = next((n for n in CPU_ORDER if n in available), None)
    if best_cpu is not None:
        chosen.append(best_cpu)
    chosen.extend(n for n in GPU_METERS if n in available and include_gpu)
    for m in infos:
        if m.name in chosen:
            continue
        if not m.available:
            skipped[m.name] = m.reason or "unavailable"
        elif m.name in CPU_ORDER:
            skipped[m.name] = f"a better CPU meter ({best_cpu}) is available"
        else:
            skipped[m.name] = "plug-in meter: not chosen automatically; ask for it by name"
    return Detection(chosen=chosen, meters=infos, skipped=skipped, options=opts)
