"""The metering contract: how a run's energy is measured, whatever the framework.

Three built-in implementations keep it — :class:`~rayjoule.metering.local.LocalMetering`
(the driver's own host), :class:`~rayjoule.metering.ray_cluster.RayMetering` (a meter
actor per physical host of a Ray cluster) and :class:`~rayjoule.metering.calls.CallMetering`
(remote calls that meter themselves) — and :class:`rayjoule.testing.MeteringContract` is the
suite that proves any other one does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from rayjoule.core.config import RunConfig
from rayjoule.core.result import MeterLabel
from rayjoule.metering.host_meter import IdleBaseline, WindowEnergy


class Metering(ABC):
    """Meters every host a run's work touches, one window per repeat.

    A session (or a measured block) calls, in this order:

    * :meth:`from_config` once: open the meters (raise ``meters.MeterError`` or
      :class:`~rayjoule.core.errors.RayjouleError` when none can be used — before any
      run is stored). Afterwards :attr:`label` says which meter(s) and whether the
      figures are ``measured`` or ``modelled``, and :attr:`host_info` maps each metered
      host (hostname + boot id, one per physical machine) to a JSON-safe description.
    * :meth:`idle` once: host → :class:`IdleBaseline` (watts and how they were obtained)
      for the hosts in :attr:`host_info`.
    * :meth:`start` / :meth:`stop` around each repeat: ``stop`` returns host →
      :class:`WindowEnergy` of the window since ``start`` (``{}`` when no window is open).
      A host lost mid-window keeps the energy last seen, marked ``complete=False``; a
      meter that failed during the window raises ``meters.MeterError`` from ``stop``
      (a window with a gap is not a measurement); either way the window is closed and
      the next ``start`` opens a fresh one.
    * :meth:`record_tasks` with the run's attributed task records (optional export).
    * :meth:`close` at the end, also after a failure: idempotent; a closed metering
      holds no sampling thread.

    Implementations that a third party registers under the ``rayjoule.metering``
    entry-point group (named after the framework they meter) are built with
    :meth:`from_config`.
    """

    #: which meter(s) saw the energy, and whether it is measured or modelled
    label: MeterLabel
    #: metered host → JSON-safe description (machine, each meter's basis)
    host_info: dict[str, dict[str, Any]]

    @classmethod
    @abstractmethod
    def from_config(cls, config: RunConfig) -> Metering:
        """The metering of a run of ``config`` (its meter, tdp scope and overrides)."""

    @abstractmethod
    def idle(self, seconds: float) -> dict[str, IdleBaseline]:
        """Each host's idle power, measured over ``seconds`` where the meter measures."""

    @abstractmethod
    def start(self) -> None:
        """Open a window on every host's meter."""

    @abstractmethod
    def stop(self) -> dict[str, WindowEnergy]:
        """Close the open window: host → the energy since :meth:`start`."""

    def name_run(self, run_id: str) -> None:  # noqa: B027 - optional hook
        """Say which run the next window belongs to (Ray: the meter actors' log names it)."""

    def record_tasks(self, tasks: Iterable[Any]) -> None:  # noqa: B027 - optional hook
        """Export the tasks' attributed energy (``TaskRecord.energy_j``); default: nothing."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the meters; safe to call more than once."""

    def __enter__(self) -> Metering:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
