"""The package's boundaries: what importing ``meters`` pulls in, what it exports, and the
conformance suite it ships for third-party meters."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import meters

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(ROOT)})


def test_importing_every_meters_module_loads_only_stdlib_psutil_and_numpy() -> None:
    code = textwrap.dedent("""
        import importlib, json, pkgutil, sys
        before = set(sys.modules)
        import meters
        for info in pkgutil.iter_modules(meters.__path__, "meters."):
            if info.name != "meters.testing":  # the test suite: imports pytest, by design
                importlib.import_module(info.name)
        tops = {name.partition(".")[0] for name in set(sys.modules) - before}
        print(json.dumps(sorted(tops - set(sys.stdlib_module_names))))
    """)
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)) <= {"meters", "psutil", "numpy"}


def test_import_meters_pulls_in_no_framework_and_no_pytest() -> None:
    code = ("import json, sys, meters\n"
            "print(json.dumps(sorted(m for m in ('pytest', 'ray', 'optuna', 'lithops', "
            "'rayjoule', 'meters.testing') if m in sys.modules)))")
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_every_exported_name_is_importable() -> None:
    namespace: dict[str, object] = {}
    exec("from meters import *", namespace)
    assert set(meters.__all__) <= set(namespace)


def test_the_documented_environment_variables_set_the_tdp_model() -> None:
    model = meters.resolve_model(vcpus=4, env={"RAYJOULE_TDP_WATTS": "120",
                                               "RAYJOULE_CPU_THREADS": "24"})
    assert model.basis == "override" and model.max_w_per_vcpu == 5.0
    assert model.origins["tdp_w"] == "environment RAYJOULE_TDP_WATTS"


PLUGIN_TESTS = textwrap.dedent("""
    import time

    import pytest

    from meters import MODELLED, Reading
    from meters.testing import MeterContract
    from tests.meters.plugin_example import ConstantMeter


    class RunningBackwards(ConstantMeter):
        '''A broken meter: its cumulative joules go down.'''

        def _read(self):
            t = time.monotonic()
            return Reading({"board": -self.watts * (t - self._t0)}, t=t, kind=MODELLED,
                           source=self.name)


    class TestConstant(MeterContract):
        @pytest.fixture
        def make_meter(self):
            return lambda: ConstantMeter(watts=5.0)


    class TestBackwards(MeterContract):
        @pytest.fixture
        def make_meter(self):
            return lambda: RunningBackwards(watts=5.0)
""")


def test_the_shipped_contract_passes_a_plugin_meter_and_catches_a_broken_one(tmp_path):
    (tmp_path / "test_plugin.py").write_text(PLUGIN_TESTS)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-rA", "test_plugin.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(ROOT)})
    passed = [line for line in proc.stdout.splitlines() if line.startswith("PASSED")]
    failed = [line for line in proc.stdout.splitlines() if line.startswith("FAILED")]
    assert len([line for line in passed if "TestConstant" in line]) >= 10, proc.stdout
    assert failed and all("TestBackwards" in line for line in failed), proc.stdout
    assert any("never_decrease" in line for line in failed), proc.stdout
