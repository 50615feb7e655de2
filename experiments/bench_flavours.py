"""CPU time per call of each workload flavour, side by side: ``fast`` against ``lithops``.

A *call* is one map call of the original Lithops application (``flavour=lithops``: pi
10**7 points, stock 100 forecasts of 730 days, mandelbrot one 192 x 192 tile of the zoom,
airbnb one city file) and, for ``fast``, the same amount of work through today's kernel
(pi and stock: the fast flavour's chunks of about as many points / forecasts; mandelbrot:
the fast kernel on the same tile, region and max_iter; airbnb: as many reviews of the
synthetic corpus). Each call is timed with ``time.process_time`` in this process after
untimed setup (generating cached input, importing scipy and VADER); the table shows the
median over the calls, per call and per unit (point, forecast, pixel, review), next to the
figures measured for the originals on the thesis' 2-core VM where there are some.

    python experiments/bench_flavours.py                    # all four, 3 calls per flavour
    python experiments/bench_flavours.py pi stock --calls 5

Writes ``experiments/results/bench_flavours.csv`` (one row per timed call).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import workloads  # noqa: E402
from experiments._results import RESULTS as RESULTS_DIR  # noqa: E402
from experiments._results import write_rows  # noqa: E402
from workloads import _thesis_mandelbrot as zoom  # noqa: E402

RESULTS = RESULTS_DIR / "bench_flavours.csv"

REFERENCE_S = {("pi", "lithops"): 265e-9, ("stock", "lithops"): 32e-3}
"""CPU seconds per unit of the original applications, measured on the thesis' 2-core VM."""

TOLERANCE = 0.25

UNITS = {"pi": "point", "stock": "forecast", "mandelbrot": "pixel", "airbnb": "review"}

Call = tuple[Callable[[Any], Any], Any, Callable[[Any], int]]
"""``(map, chunk, units of the partial)``: one timed call."""


def _chunks(name: str, size: int, tasks: int, params: dict[str, Any]) -> list[Any]:
    """The workload's own chunks for ``tasks`` tasks (setup such as input files happens here)."""
    wl = workloads.get(name)
    size, values = wl.validate(size, tasks, params)
    return wl.partition(tasks, size, 0, values)


def calls(name: str, flavour: str, n: int) -> Iterator[Call]:
    """``n`` calls of one workload flavour, each about one original call's work."""
    wl = workloads.get(name)
    if name == "pi":
        per_call = 10**7
        chunks = _chunks("pi", n * per_call, n, {"flavour": flavour})
        yield from ((wl.map, c, lambda p: p.points) for c in chunks)
    elif name == "stock":
        chunks = _chunks("stock", n * 100, n, {"flavour": flavour})
        yield from ((wl.map, c, lambda p: int(p.end.size)) for c in chunks)
    elif name == "mandelbrot":
        picks = np.linspace(0, zoom.CALLS - 1, n).round().astype(int).tolist()
        side = zoom.WIDTH // zoom.BLOCKS_PER_ROW
        if flavour == "lithops":
            for k in picks:
                yield wl.map, zoom.TileChunk(zoom.WIDTH, k, k + 1), lambda p: side * side
        else:
            for k in picks:
                frame, tile = divmod(k, zoom.CONCURRENCY)
                x0, x1, y0, y1 = zoom.tile_limits(frame, tile)
                chunk, = _chunks("mandelbrot", side, 1, {"max_iter": zoom.FRAMES[frame][1],
                                                         "x0": x0, "x1": x1, "y0": y0, "y1": y1})
                yield wl.map, chunk, lambda p: side * side
    elif name == "airbnb":
        per_call = 1500
        chunks = _chunks("airbnb", len(_city_names()) * per_call, len(_city_names()),
                         {"flavour": "lithops"}) if flavour == "lithops" else (
            _chunks("airbnb", n * per_call, n, {}))
        units = ((lambda p: sum(c.rows for c in p.cities)) if flavour == "lithops"
                 else (lambda p: p.reviews))
        yield from ((wl.map, c, units) for c in chunks[:n])
    else:
        raise SystemExit(f"no benchmark for workload {name!r}")


def _city_names() -> list[str]:
    from workloads import _thesis_airbnb

    return list(_thesis_airbnb.DATASET)


def warm_up() -> None:
    """Untimed: import what the kernels import lazily, so no call pays for it."""
    import scipy.stats
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    scipy.stats.norm.ppf(0.5)
    SentimentIntensityAnalyzer().polarity_scores("warm")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="workloads (default: pi stock mandelbrot airbnb)")
    parser.add_argument("--calls", type=int, default=3, help="timed calls per flavour (default 3)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"CSV path (default {RESULTS})")
    args = parser.parse_args(argv)
    names = args.names or list(UNITS)
    warm_up()

    rows, checks = [], []
    print(f"{cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"numpy {np.__version__}, scipy {_version('scipy')}, "
          f"vaderSentiment {_version('vaderSentiment')}")
    print(f"{'workload':<11}{'flavour':<9}{'calls':>6}{'CPU s/call':>12}{'units/call':>12}"
          f"{'CPU/unit':>11}{'best':>11}{'original':>11}{'ratio':>12}")
    for name in names:
        for flavour in ("fast", "lithops"):
            seconds, units = [], []
            ref = REFERENCE_S.get((name, flavour))
            for i, (fn, chunk, count) in enumerate(calls(name, flavour, args.calls)):
                start = time.process_time()
                partial = fn(chunk)
                cpu = time.process_time() - start
                seconds.append(cpu)
                units.append(count(partial))
                rows.append({
                    "workload": name, "flavour": flavour, "call": i, "cpu_s": round(cpu, 6),
                    "units": units[-1], "unit": UNITS[name],
                    "cpu_per_unit_s": cpu / units[-1] if units[-1] else "",
                    "reference_per_unit_s": ref or "", "cpu": cpu_model(),
                    "cpus": os.cpu_count(), "host": platform.node(),
                    "python": platform.python_version(),
                })
            per_unit = [s / u for s, u in zip(seconds, units, strict=True) if u]
            median, best = statistics.median(per_unit), min(per_unit)
            ratios = f"{median / ref:.2f}/{best / ref:.2f}" if ref else "-"
            if ref:
                checks.append((name, median / ref, best / ref))
            print(f"{name:<11}{flavour:<9}{len(seconds):>6}{statistics.median(seconds):>12.4f}"
                  f"{statistics.median(units):>12.0f}{_human(median):>11}{_human(best):>11}"
                  f"{_human(ref) if ref else '-':>11}{ratios:>12}", flush=True)
    print("CPU/unit: median over the calls; best: the fastest call; ratio: median/best to the "
          "original's figure")
    for name, median, best in checks:
        verdict = {True: "within", False: "OUTSIDE"}
        print(f"{name}: lithops flavour {verdict[abs(median - 1) <= TOLERANCE]} "
              f"±{TOLERANCE:.0%} of the original's figure by the median, "
              f"{verdict[abs(best - 1) <= TOLERANCE]} by the best call")
    print(f"wrote {write_rows(args.out, rows)}")
    return 0


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def _human(seconds: float) -> str:
    """Seconds with a unit that keeps 3-4 significant digits: ns, µs, ms or s."""
    for unit, scale in (("ns", 1e-9), ("µs", 1e-6), ("ms", 1e-3)):
        if seconds < 1000 * scale:
            return f"{seconds / scale:.1f} {unit}"
    return f"{seconds:.2f} s"


if __name__ == "__main__":
    sys.exit(main())
