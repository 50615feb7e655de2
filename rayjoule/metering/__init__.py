"""Floor 2: windows over meters, idle baselines, the per-host Ray meter actors and metrics.

:class:`Metering` is the contract every way of metering a run keeps;
:func:`metering_for` picks one for a run's config.
"""

from rayjoule.metering.base import Metering
from rayjoule.metering.choose import metering_for

__all__ = ["Metering", "metering_for"]
