"""Figures are drawn without choosing a matplotlib backend for the whole process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

DRAW = textwrap.dedent("""
    import sys
    import matplotlib
    backend = dict.__getitem__(matplotlib.rcParams, "backend")
    from rayjoule.cli.plots import compare_figure
    stat = lambda m: {"median": m, "ci95": [m - 1, m + 1]}
    report = {"workload": "pi", "size": 1000, "repeats": 3,
              "meter": {"name": "tdp", "kind": "modelled"},
              "frameworks": {fw: {"static_j": stat(s), "dynamic_j": stat(d),
                                  "total_j": stat(s + d)}
                             for fw, s, d in (("native", 5.0, 10.0), ("ray", 6.0, 14.0))}}
    path = compare_figure(report, sys.argv[1])
    print(path.stat().st_size)
    print(dict.__getitem__(matplotlib.rcParams, "backend") == backend)
    print("matplotlib.pyplot" in sys.modules)
""")


def test_a_figure_leaves_the_process_backend_and_pyplot_alone(tmp_path):
    proc = subprocess.run([sys.executable, "-c", DRAW, str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    size, backend_unchanged, pyplot_imported = proc.stdout.split()
    assert int(size) > 1000 and (tmp_path / "compare_pi.png").is_file()
    assert backend_unchanged == "True" and pyplot_imported == "False"
