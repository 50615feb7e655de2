"""An example third-party meter, as a plug-in would register it under ``rayjoule.meters``.

It draws a constant power, so it is easy to reason about in tests; its tests
subclass the same :class:`meters.testing.MeterContract` as the built-in meters.
"""

from __future__ import annotations

import time
from typing import Any

from meters import MODELLED, Meter, Probe, Reading


class ConstantMeter(Meter):
    """A modelled meter of ``watts`` constant power on the domain ``"board"``."""

    name = "constant"
    kind = MODELLED

    def __init__(self, watts: float = 5.0) -> None:
        super().__init__()
        self.watts = watts
        self.domains = ["board"]
        self._t0 = time.monotonic()

    def _read(self) -> Reading:
        t = time.monotonic()
        return Reading({"board": self.watts * (t - self._t0)}, t=t, kind=MODELLED,
                       source=self.name)

    @classmethod
    def _probe(cls, **options: Any) -> Probe:
        return Probe(True, None, MODELLED, ["board"])


class NotAMeter:
    """What a broken plug-in might point at."""
