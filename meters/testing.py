"""What every meter must do: one conformance suite that each meter's tests subclass.

Shipped inside the package (as ``optuna.testing`` is) so that a third-party
meter's tests prove it against the same contract as the built-in meters::

    import pytest
    from meters.testing import MeterContract

    class TestMyMeter(MeterContract):
        @pytest.fixture
        def make_meter(self):
            return lambda: MyMeter(...)

        def advance(self, meter):       # optional: make energy flow between reads
            ...

The suite checks the contract written in :class:`meters.Meter`'s docstring:
a :class:`~meters.Reading` per read with cumulative, non-decreasing joules per
domain and a non-decreasing monotonic ``t``; ``total`` consistent with the
domains rule; ``kind`` in {measured, modelled} and the source set; ``probe()``
never raises and returns a :class:`~meters.Probe`; ``close()`` is idempotent
and the meter is a context manager; readings round-trip through ``to_dict``;
``basis`` is JSON-safe and names the meter and its kind.

This module imports pytest, so ``meters`` never imports it: only tests do.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable

import pytest

from meters import KINDS, Meter, MeterError, Probe, Reading

__all__ = ["MeterContract"]


class MeterContract:
    """Subclass with a ``make_meter`` fixture: a zero-argument callable returning a new meter."""

    reads = 4

    def advance(self, meter: Meter) -> None:
        """Hook: make energy flow between two reads (default: let a little time pass)."""
        time.sleep(0.01)

    @pytest.fixture
    def meter(self, make_meter: Callable[[], Meter]):
        m = make_meter()
        try:
            yield m
        finally:
            m.close()

    def _readings(self, meter: Meter) -> list[Reading]:
        out = [meter.read()]
        for _ in range(self.reads - 1):
            self.advance(meter)
            out.append(meter.read())
        return out

    def test_read_returns_reading_with_the_meters_domains(self, meter: Meter) -> None:
        r = meter.read()
        assert isinstance(r, Reading)
        assert list(meter.domains), "a meter has at least one domain"
        assert set(r.joules) == set(meter.domains)

    def test_joules_are_cumulative_and_never_decrease(self, meter: Meter) -> None:
        readings = self._readings(meter)
        for earlier, later in zip(readings, readings[1:], strict=False):
            for domain, j in later.joules.items():
                assert math.isfinite(j)
                assert j >= earlier.joules[domain] - 1e-9, (domain, earlier, later)
        assert all(j >= 0 for r in readings for j in r.joules.values())

    def test_t_is_monotonic(self, meter: Meter) -> None:
        readings = self._readings(meter)
        ts = [r.t for r in readings]
        assert ts == sorted(ts)
        assert abs(ts[-1] - time.monotonic()) < 60, "t is time.monotonic() seconds"

    def test_total_follows_the_domains_rule(self, meter: Meter) -> None:
        r = self._readings(meter)[-1]
        assert r.total >= 0
        assert set(r.total_domains) <= set(r.joules)
        assert r.total == pytest.approx(sum(r.joules[d] for d in r.total_domains))
        assert r.total <= sum(r.joules.values()) + 1e-9

    def test_kind_and_source(self, meter: Meter) -> None:
        r = meter.read()
        assert meter.kind in KINDS
        assert r.kind == meter.kind
        assert isinstance(r.source, str) and r.source
        assert isinstance(type(meter).name, str) and type(meter).name

    def test_reading_round_trips_through_dict(self, meter: Meter) -> None:
        r = meter.read()
        assert Reading.from_dict(r.to_dict()) == r

    def test_probe_never_raises(self, meter: Meter) -> None:
        cls = type(meter)
        p = cls.probe()
        assert isinstance(p, Probe)
        assert p.kind in KINDS
        assert p.available or p.reason
        odd = cls.probe(not_an_option=object())
        assert isinstance(odd, Probe)

    def test_close_is_idempotent_and_final(self, make_meter: Callable[[], Meter]) -> None:
        m = make_meter()
        m.read()
        m.close()
        m.close()
        assert m.closed
        with pytest.raises(MeterError):
            m.read()

    def test_context_manager_closes(self, make_meter: Callable[[], Meter]) -> None:
        with make_meter() as m:
            m.read()
        assert m.closed

    def test_basis_is_json_safe_and_names_the_meter(self, meter: Meter) -> None:
        basis = meter.basis
        assert isinstance(basis, dict)
        assert json.loads(json.dumps(basis, allow_nan=False)) == basis, "basis must be JSON-safe"
        assert basis["meter"] == type(meter).name
        assert basis["kind"] == meter.kind
        assert basis["domains"] == list(meter.domains)
        meter.close()
        assert meter.basis == basis, "basis stays readable after close"
