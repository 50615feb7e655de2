"""The meter contract: :class:`Meter`, :class:`Reading`, :class:`Probe` and the errors.

Why this shape (after Zeus and pyJoules): a meter only reports *cumulative*
counters since it was created. Windows (a run, an idle baseline, an exporter)
are differences of two readings owned by the caller, so any number of windows
can overlap on one meter and no meter needs to know about them.

Every meter states where its figures come from: ``kind`` is ``"measured"``
(a hardware counter or sensor) or ``"modelled"`` (an estimate), and
``source`` names the meter. A modelled figure is never presented as measured.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Self

log = logging.getLogger(__name__)

MEASURED = "measured"
MODELLED = "modelled"
KINDS = (MEASURED, MODELLED)


class MeterError(Exception):
    """Base class of every error of the ``meters`` package; the message says how to fix it."""


class MeterUnavailable(MeterError):
    """This meter cannot work on this host; ``reason`` says why and how to fix it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Reading:
    """Cumulative energy of one meter at one instant.

    ``joules`` maps each domain to the joules used since the meter was created.
    ``total_domains`` names the domains whose sum is the meter's total without
    double counting (e.g. RAPL's core and uncore are inside their package, and
    psys contains the packages), so :attr:`total` is always well defined.
    ``t`` is :func:`time.monotonic` seconds; ``kind`` is ``"measured"`` or
    ``"modelled"``; ``source`` is the meter's name (e.g. ``"rapl"``).

    >>> r0 = Reading({"cpu": 0.0}, t=10.0, kind="modelled", source="tdp")
    >>> r1 = Reading({"cpu": 30.0}, t=12.0, kind="modelled", source="tdp")
    >>> r1.total, r1.total_watts_since(r0)
    (30.0, 15.0)
    """

    joules: dict[str, float]
    t: float
    kind: str
    source: str
    total_domains: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        # Copy so that a caller mutating its dict never changes a reading; an empty
        # total_domains means "all domains add up" (the usual case for simple meters).
        object.__setattr__(self, "joules", {str(k): float(v) for k, v in self.joules.items()})
        tops = tuple(self.total_domains) or tuple(self.joules)
        unknown = [d for d in tops if d not in self.joules]
        if unknown:
            raise ValueError(
                f"total_domains {unknown} are not among the domains {list(self.joules)}"
            )
        object.__setattr__(self, "total_domains", tops)
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")

    @property
    def total(self) -> float:
        """Joules of the whole meter since creation, without double counting."""
        return float(sum(self.joules[d] for d in self.total_domains))

    @property
    def total_j(self) -> float:
        """Same as :attr:`total`, spelled with its unit for records."""
        return self.total

    def delta_j(self, prev: Reading) -> dict[str, float]:
        """Joules per domain between ``prev`` and this reading (same meter)."""
        return {d: j - prev.joules.get(d, 0.0) for d, j in self.joules.items()}

    def watts_since(self, prev: Reading) -> dict[str, float]:
        """Mean watts per domain between ``prev`` and this reading."""
        dt = self.t - prev.t
        if dt <= 0:
            raise ValueError(f"readings are not in time order (dt = {dt:.6f} s)")
        return {d: j / dt for d, j in self.delta_j(prev).items()}

    def total_watts_since(self, prev: Reading) -> float:
        """Mean total watts between ``prev`` and this reading."""
        dt = self.t - prev.t
        if dt <= 0:
            raise ValueError(f"readings are not in time order (dt = {dt:.6f} s)")
        return (self.total - prev.total) / dt

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; :meth:`from_dict` reverses it."""
        return {
            "joules": dict(self.joules),
            "total_j": self.total,
            "total_domains": list(self.total_domains),
            "t": self.t,
            "kind": self.kind,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Reading:
        return cls(
            joules=dict(d["joules"]),
            t=float(d["t"]),
            kind=str(d["kind"]),
            source=str(d["source"]),
            total_domains=tuple(d.get("total_domains", ())),
        )


@dataclass(frozen=True)
class Probe:
    """Whether a meter can work on this host, and if not, why (and how to fix it)."""

    available: bool
    reason: str | None
    kind: str
    domains: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "reason": self.reason,
            "kind": self.kind,
            "domains": list(self.domains),
        }


class Meter(ABC):
    """An energy meter: cumulative joules per domain since creation.

    Contract (checked for every meter by :class:`meters.testing.MeterContract`):

    * :meth:`read` samples the counters at the moment of the call and returns a
      :class:`Reading` whose per-domain joules never decrease and whose ``t``
      never goes back;
    * ``name`` (class attribute) identifies the meter, ``kind`` is
      ``"measured"`` or ``"modelled"``, ``domains`` lists the reading's keys;
    * constructing a meter that cannot work raises :class:`MeterUnavailable`;
    * :meth:`probe` never raises: it returns a :class:`Probe` with the reason;
    * :meth:`close` stops background threads or processes, may be called more
      than once, and the meter is a context manager that closes itself;
    * :attr:`basis` is a JSON-safe dict saying what the figures rest on (stored
      with every run): at least ``meter``, ``kind`` and ``domains``, plus what
      the meter adds in :meth:`_basis` (RAPL: the zones counted; tdp: the table
      row or override and the watts per vCPU; perf: the events; NVML: the GPUs).

    Subclasses implement :meth:`_read` and :meth:`_probe` (and :meth:`_close`
    when they hold resources, :meth:`_basis` to describe themselves).
    """

    name: ClassVar[str] = "meter"
    kind: str = MEASURED
    domains: list[str]

    def __init__(self) -> None:
        self.domains = []
        self._closed = False
        self._close_lock = threading.Lock()

    # -- public API --------------------------------------------------------
    def read(self) -> Reading:
        """Sample now and return cumulative joules since creation."""
        if self._closed:
            raise MeterError(f"meter {self.name!r} is closed; create a new one to keep measuring")
        return self._read()

    def close(self) -> None:
        """Stop background work; safe to call more than once."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def basis(self) -> dict[str, Any]:
        """JSON-safe: what this meter's figures rest on (valid open or closed).

        >>> from meters import TdpMeter
        >>> with TdpMeter(cpu_model="AMD EPYC", vcpus=2) as m:
        ...     b = m.basis
        >>> b["meter"], b["kind"], b["domains"], b["basis"]
        ('tdp', 'modelled', ['cpu'], 'fallback')
        """
        return {"meter": self.name, "kind": self.kind, "domains": list(self.domains),
                **self._basis()}

    @classmethod
    def probe(cls, **options: Any) -> Probe:
        """Can this meter work here? Never raises; ``options`` are constructor options."""
        try:
            result = cls._probe(**options)
        except Exception as exc:  # a probe must never raise: report the surprise instead
            log.debug("probe of %s raised", cls.name, exc_info=True)
            return Probe(False, f"{cls.name} probe failed unexpectedly: {exc!r}", cls.kind, [])
        if not isinstance(result, Probe):
            return Probe(False, f"{cls.name} probe returned {type(result).__name__}", cls.kind, [])
        return result

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:  # best effort: never leave a sampler thread or perf running
        try:
            if not getattr(self, "_closed", True):
                self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown, nothing sensible to do
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self.name} {self.kind} {self.domains} {state}>"

    # -- for subclasses ----------------------------------------------------
    @abstractmethod
    def _read(self) -> Reading: ...

    @classmethod
    @abstractmethod
    def _probe(cls, **options: Any) -> Probe: ...

    def _close(self) -> None:  # noqa: B027 - optional hook, most meters hold resources
        """Release resources; called once by :meth:`close`."""

    def _basis(self) -> dict[str, Any]:
        """What :attr:`basis` adds for this meter (JSON-safe values only)."""
        return {}

