"""A third-party framework registered by entry point: found by name, validated like the
built-ins, proven by the :mod:`rayjoule.testing` suites, and run end to end.

The plug-in is "installed" as a real distribution would be: a ``*.dist-info`` folder with
``entry_points.txt`` on ``sys.path`` (and on ``PYTHONPATH`` for a command line).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rayjoule.core.config import RunConfig, framework_names
from rayjoule.core.errors import ConfigError
from rayjoule.frameworks import executor_for
from rayjoule.metering import metering_for
from rayjoule.testing import ExecutorContract, MeteringContract, contract_config
from tests.rayjoule.frameworks.plugin_framework import ConstantMetering, InlineExecutor

ROOT = Path(__file__).resolve().parents[3]
PLUGIN = "tests.rayjoule.frameworks.plugin_framework"


@pytest.fixture
def installed(tmp_path, monkeypatch) -> Path:
    """A distribution registering ``inline`` (and two broken executors) on sys.path."""
    info = tmp_path / "rayjoule_inline-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rayjoule-inline\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[rayjoule.frameworks]\ninline = {PLUGIN}:InlineExecutor\n"
        f"notone = {PLUGIN}:NotAnExecutor\ngone = no_such_module_here:Executor\n\n"
        f"[rayjoule.metering]\ninline = {PLUGIN}:ConstantMetering\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.mark.usefixtures("installed")
class TestInlineExecutor(ExecutorContract):
    in_process = True

    def config(self, **overrides):
        return contract_config("inline", **overrides)

    def test_found_by_its_entry_point(self):
        assert type(self.executor()) is InlineExecutor


@pytest.mark.usefixtures("installed")
class TestConstantMetering(MeteringContract):
    @pytest.fixture
    def make_metering(self):
        return lambda: metering_for(contract_config("inline").validated())

    def test_found_by_its_entry_point(self, metering):
        assert type(metering) is ConstantMetering


def test_registered_frameworks_are_valid_names(installed):
    assert framework_names()[:3] == ("native", "ray", "lithops")
    assert {"inline", "notone", "gone"} <= set(framework_names())
    assert RunConfig(framework="inline").validated().framework == "inline"


def test_without_the_distribution_the_name_is_unknown():
    assert "inline" not in framework_names()
    with pytest.raises(ConfigError, match="framework must be one of native, ray, lithops"):
        RunConfig(framework="inline").validated()


@pytest.mark.parametrize(("name", "message"), [
    ("notone", "entry point rayjoule.frameworks:notone .* is not a "
               "rayjoule.frameworks.Executor subclass"),
    ("gone", "entry point rayjoule.frameworks:gone .* failed to load: ModuleNotFoundError"),
])
def test_a_broken_entry_point_is_named(installed, name, message):
    with pytest.raises(ConfigError, match=message):
        executor_for(RunConfig(framework=name))


def test_an_unknown_framework_lists_the_available_ones(installed):
    with pytest.raises(ConfigError, match="unknown framework 'dask'; available: native, ray, "
                                          "lithops, .*inline"):
        executor_for(RunConfig(framework="dask"))


def test_a_run_on_a_registered_framework_from_the_command_line(installed, tmp_path):
    out = tmp_path / "run.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(installed), str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run(
        [sys.executable, "-m", "rayjoule.run", "--workload", "pi", "--size", "20000",
         "--framework", "inline", "--tasks", "3", "--idle-seconds", "0",
         "--db", str(tmp_path / "r.sqlite"), "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["status"] == "ok" and result["config"]["framework"] == "inline"
    assert result["meter"] == {"name": "constant", "kind": "modelled"}
    assert len(result["tasks"]) == 3
    assert result["energy"]["total_j"] > 0
