"""A third-party meter registered by entry point (``rayjoule.meters``) is found by name and
by ``detect()``, and passes :class:`meters.testing.MeterContract` as the built-ins do.

The plug-in is "installed" as a real distribution would be: a ``*.dist-info`` folder with
``entry_points.txt`` on ``sys.path``.
"""

from __future__ import annotations

import pytest

import meters
from meters.testing import MeterContract
from tests.meters.plugin_example import ConstantMeter


@pytest.fixture
def installed(tmp_path, monkeypatch):
    info = tmp_path / "rayjoule_constant_meter-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rayjoule-constant-meter\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[rayjoule.meters]\nconstant = tests.meters.plugin_example:ConstantMeter\n")
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.mark.usefixtures("installed")
class TestConstantMeterByEntryPoint(MeterContract):
    @pytest.fixture
    def make_meter(self):
        return lambda: meters.get_meter("constant", watts=3.0)

    def test_found_by_name_and_by_detect(self):
        assert type(meters.get_meter("constant")) is ConstantMeter
        found = {m.name: m for m in meters.detect(include_gpu=False).meters}
        assert found["constant"].available


def test_without_the_distribution_the_meter_is_unknown():
    with pytest.raises(meters.MeterError, match="unknown meter 'constant'"):
        meters.get_meter("constant")
