"""Several meters read as one: e.g. RAPL for the CPU plus NVML for the GPUs.

Why: a run wants one cumulative figure per host. The composite's total is the
sum of its meters' totals (each already free of double counting), and its
kind is ``"measured"`` only when every part is measured — a sum with one
modelled part is a model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from meters._base import MEASURED, MODELLED, Meter, MeterError, Probe, Reading


class CompositeMeter(Meter):
    """Read ``meters`` together as one :class:`Reading`.

    Domains keep their names (``package-0``, ``gpu-0``) unless ``prefix`` is
    true, then they become ``"<meter>/<domain>"`` (``rapl/package-0``);
    clashing names without ``prefix`` raise :class:`MeterError`.
    The composite owns its meters: :meth:`close` closes them all.

    >>> with CompositeMeter([RaplMeter(), NvmlMeter()]) as m:   # doctest: +SKIP
    ...     m.read().total
    """

    name = "composite"

    def __init__(self, meters: Sequence[Meter], prefix: bool = False) -> None:
        super().__init__()
        if not meters:
            raise MeterError("CompositeMeter needs at least one meter")
        self.meters = list(meters)
        self.prefix = prefix
        self.kind = MEASURED if all(m.kind == MEASURED for m in self.meters) else MODELLED
        self.source = "+".join(m.name for m in self.meters)
        names: list[str] = []
        for m in self.meters:
            names.extend(self._key(m, d) for d in m.domains)
        clashes = sorted({d for d in names if names.count(d) > 1})
        if clashes:
            raise MeterError(f"domains {clashes} appear in several meters: use prefix=True")
        self.domains = names

    def _key(self, meter: Meter, domain: str) -> str:
        return f"{meter.name}/{domain}" if self.prefix else domain

    def _read(self) -> Reading:
        joules: dict[str, float] = {}
        tops: list[str] = []
        for m in self.meters:
            r = m.read()
            for d, j in r.joules.items():
                joules[self._key(m, d)] = j
            tops.extend(self._key(m, d) for d in r.total_domains)
        return Reading(joules, t=time.monotonic(), kind=self.kind, source=self.source,
                       total_domains=tuple(tops))

    def _basis(self) -> dict[str, Any]:
        return {"source": self.source, "parts": [m.basis for m in self.meters]}

    def _close(self) -> None:
        errors = []
        for m in self.meters:
            try:
                m.close()
            except Exception as exc:  # close every meter even if one fails
                errors.append(exc)
        if errors:
            raise MeterError(f"closing meters failed: {errors}")

    @classmethod
    def _probe(cls, **options: Any) -> Probe:
        return Probe(False, "a composite is built from other meters, not probed", MEASURED, [])
