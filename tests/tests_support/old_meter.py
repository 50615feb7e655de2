"""A stand-in for a detached meter actor left on a cluster by an older rayjoule.

Ray pickles this module by value (``ship_by_value``) because Ray's workers
cannot import test modules.
"""

from __future__ import annotations


class OldMeterActor:
    """An older MeterActor: it has no ``api_version()``."""

    def host(self) -> str:
        return "old"


def ship_by_value() -> None:
    import sys

    from ray import cloudpickle  # Ray's vendored copy is the one that pickles actors

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
