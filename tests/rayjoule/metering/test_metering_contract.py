"""Every built-in metering proves itself against :class:`rayjoule.testing.MeteringContract`,
and :func:`rayjoule.metering.metering_for` picks the one a run needs."""

from __future__ import annotations

import pytest

from rayjoule.metering import metering_for
from rayjoule.metering.calls import CallMetering
from rayjoule.metering.local import LocalMetering
from rayjoule.testing import MeteringContract, contract_config


class TestLocalMetering(MeteringContract):
    @pytest.fixture
    def make_metering(self):
        return lambda: metering_for(contract_config("native").validated())


class TestCallMetering(MeteringContract):
    @pytest.fixture
    def make_metering(self):
        return lambda: metering_for(contract_config("lithops").validated(), remote_calls=True)


@pytest.mark.usefixtures("ray_session")
class TestRayMetering(MeteringContract):
    @pytest.fixture
    def make_metering(self):
        # a workload name of its own: what it exports never mixes with other tests' series
        from rayjoule.metering.ray_cluster import RayMetering

        config = contract_config("ray", workload="metering-contract")
        return lambda: RayMetering.from_config(config)


@pytest.mark.parametrize(("framework", "remote_calls", "expected"), [
    ("native", False, LocalMetering),
    ("lithops", False, LocalMetering),
    ("lithops", True, CallMetering),
])
def test_metering_for_picks_by_where_the_work_runs(framework, remote_calls, expected):
    with metering_for(contract_config(framework).validated(), remote_calls=remote_calls) as m:
        assert type(m) is expected
