"""Fixtures for the meters tests.

The repository root is put on ``sys.path`` so that ``tests.meters.fake_powercap``
and ``tests.meters.fake_cpuinfo`` import the same way from every test folder,
whether pytest is started as ``pytest`` or ``python -m pytest``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.meters.fake_powercap import FakePowercap, make_powercap_tree  # noqa: E402

DATA = Path(__file__).with_name("data")


@pytest.fixture
def powercap(tmp_path: Path) -> FakePowercap:
    """Two sockets with core and dram subzones, laid out flat + nested as Linux does."""
    return make_powercap_tree(tmp_path / "pc", sockets=2)


@pytest.fixture(autouse=True)
def _no_meter_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their powercap root, cpuinfo and TDP explicitly; a developer's env must
    not leak in."""
    for name in ("RAYJOULE_POWERCAP_ROOT", "RAYJOULE_CPUINFO", "RAYJOULE_TDP_WATTS",
                 "RAYJOULE_CPU_THREADS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def data_dir() -> Path:
    return DATA
