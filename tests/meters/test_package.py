"""The package's boundaries: what ``import meters`` pulls in, and meters.testing for plug-ins."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import meters

ROOT = Path(__file__).resolve().parents[2]


def test_import_meters_pulls_in_no_framework_and_no_pytest() -> None:
    code = ("import json, sys, meters\n"
            "print(json.dumps(sorted(m for m in ('pytest', 'ray', 'optuna', 'lithops', "
            "'rayjoule', 'meters.testing') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert json.loads(out.stdout) == []


def test_meters_modules_import_only_stdlib_psutil_numpy_and_meters() -> None:
    allowed = {"psutil", "numpy", "meters", "pytest"}  # pytest: meters/testing.py only
    stdlib = set(sys.stdlib_module_names)
    for path in sorted((ROOT / "meters").glob("*.py")):
        for line in path.read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in ("import", "from") and not line.startswith(" "):
                top = words[1].split(".")[0]
                assert top in stdlib or top in allowed, f"{path.name}: {line}"
                if top == "pytest":
                    assert path.name == "testing.py", f"{path.name} imports pytest"


def test_the_contract_ships_inside_the_package() -> None:
    from meters.testing import MeterContract

    tests = [n for n in dir(MeterContract) if n.startswith("test_")]
    assert "test_basis_is_json_safe_and_names_the_meter" in tests
    assert len(tests) >= 10
    assert not (ROOT / "tests" / "meters" / "contract.py").exists()


def test_public_names_are_exported() -> None:
    for name in ["CallMeter", "describe_host", "TDP_WATTS_ENV", "CPU_THREADS_ENV", "CPUINFO_ENV",
                 "scan_powercap", "discover_zones", "Sampler", "resolve_model"]:
        assert name in meters.__all__ and hasattr(meters, name), name
    assert meters.TDP_WATTS_ENV == "RAYJOULE_TDP_WATTS"
    assert meters.CPU_THREADS_ENV == "RAYJOULE_CPU_THREADS"
