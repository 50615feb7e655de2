"""PNG figures of tuning and comparison results (matplotlib, headless).

Axis labels carry the meter and kind, so a modelled figure is never mistaken
for a measurement. Figures are drawn with matplotlib's object-oriented API on an Agg
canvas of their own: no pyplot, so no process-wide backend is chosen for the user and no
figure is left registered anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _axes(figsize: tuple[float, float]) -> tuple[Any, Any]:
    """A new figure on its own Agg canvas, and its one set of axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def tune_figures(report: Any, out_dir: str | Path) -> list[Path]:
    """Joules vs parallelism, optimisation history and (multi-objective) the Pareto front."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = [t for t in report.trials if t["state"] == "COMPLETE" and t["total_j"] is not None]
    source = f"{report.meter['name']}, {report.meter['kind']}" if report.meter else "no meter"
    paths = []

    fig, ax = _axes((7, 4.5))
    groups: dict[str, list[dict[str, Any]]] = {}
    for t in done:
        p = t["params"]
        label = p.get("framework", "") + (f"/{p['mode']}" if p.get("framework") == "ray" else "")
        groups.setdefault(label, []).append(t)
    for label, ts in sorted(groups.items()):
        ax.scatter([_parallelism(t["params"]) for t in ts], [t["total_j"] for t in ts],
                   label=label, alpha=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("parallelism (min(tasks, concurrency))")
    ax.set_ylabel(f"energy per run, J ({source})")
    ax.set_title(f"{report.study_name}: joules vs parallelism")
    if groups:
        ax.legend()
    paths.append(_save(fig, out / "energy_vs_parallelism.png"))

    fig, ax = _axes((7, 4.5))
    xs = [t["number"] for t in done]
    ys = [t["total_j"] for t in done]
    ax.plot(xs, ys, "o", label="trial", alpha=0.7)
    best, running = [], float("inf")
    for y in ys:
        running = min(running, y)
        best.append(running)
    ax.step(xs, best, where="post", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"energy per run, J ({source})")
    ax.set_title("optimisation history")
    ax.legend()
    paths.append(_save(fig, out / "optimisation_history.png"))

    if report.pareto:
        fig, ax = _axes((7, 4.5))
        ax.scatter([t["wall_s"] for t in done], [t["total_j"] for t in done], alpha=0.4,
                   label="trials")
        front = sorted(report.pareto, key=lambda t: t["wall_s"])
        ax.plot([t["wall_s"] for t in front], [t["total_j"] for t in front], "o-", color="C3",
                label="Pareto front")
        ax.set_xlabel("wall time, s")
        ax.set_ylabel(f"energy per run, J ({source})")
        ax.set_title("energy / time Pareto front")
        ax.legend()
        paths.append(_save(fig, out / "pareto_front.png"))
    return paths


def compare_figure(report: dict[str, Any], out_dir: str | Path) -> Path:
    """Bars of joules per framework, static and dynamic stacked, with 95 % CI error bars,
    written as ``compare_<workload>.png`` in ``out_dir``."""
    frameworks, meter = report["frameworks"], report["meter"]
    names: Sequence[str] = list(frameworks)
    static = [frameworks[n]["static_j"]["median"] for n in names]
    dynamic = [frameworks[n]["dynamic_j"]["median"] for n in names]
    totals = [frameworks[n]["total_j"] for n in names]
    err = [[max(t["median"] - t["ci95"][0], 0) for t in totals],
           [max(t["ci95"][1] - t["median"], 0) for t in totals]]
    fig, ax = _axes((6, 4.5))
    ax.bar(names, static, label="static (idle power × time)", color="C7")
    ax.bar(names, dynamic, bottom=static, label="dynamic", color="C0")
    ax.errorbar(names, [t["median"] for t in totals], yerr=err, fmt="none", ecolor="k",
                capsize=6, label="total, 95 % CI")
    ax.set_ylabel(f"energy per run, J ({meter['name']}, {meter['kind']})")
    ax.set_title(f"energy per framework: {report['workload']} (size {report['size']}), "
                 f"{report['repeats']} repeats", fontsize=9)
    ax.legend()
    return _save(fig, compare_figure_path(report["workload"], out_dir))


def compare_figure_path(workload: str, out_dir: str | Path) -> Path:
    """Where :func:`compare_figure` writes (known before any run: checked up front)."""
    return Path(out_dir) / f"compare_{_safe(workload)}.png"


def _safe(name: str) -> str:
    """A workload name (maybe ``pkg.mod:NAME``) as a file name."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(name))


def _parallelism(params: dict[str, Any]) -> int:
    return max(1, min(int(params.get("tasks", 1)), int(params.get("concurrency", 1))))


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def history_figure(job: dict[str, Any], out_dir: str | Path, by: str = "host",
                   suffix: str = "") -> Path:
    """Bars of each host's best joules for one job (``python -m rayjoule.history``),
    measured bars first and modelled ones after a dashed line, in another colour and
    hatched: the two are ranked apart and the figure must not read as one ranking.
    Written as ``history_<workload>_<size><suffix>.png`` in ``out_dir`` (``suffix`` tells
    apart jobs of one workload and size with different params); ``by`` is the command's
    grouping (``machine`` labels bars by hostname, ``host`` by host key)."""
    bars = [(kind, h) for kind in ("measured", "modelled", "unknown") for h in job.get(kind, [])]
    style = {"measured": {"color": "C0"},
             "modelled": {"color": "C1", "hatch": "//", "edgecolor": "white"},
             "unknown": {"color": "C7"}}
    legend = {"measured": "measured", "modelled": "modelled (estimate, ranked apart)",
              "unknown": "meter kind unknown"}
    fig, ax = _axes((max(6.0, 1.3 * len(bars) + 2), 4.5))
    shown: set[str] = set()
    for i, (kind, h) in enumerate(bars):
        ax.bar(i, h["total_j"], label=None if kind in shown else legend[kind], **style[kind])
        shown.add(kind)
        meter = "; ".join(sorted({x["model"] for x in h["hosts"] if x.get("model")})) \
            or h["meter"]
        ax.annotate(f"#{h['rank']} {meter}\n{h['runs']} run{'s' if h['runs'] != 1 else ''}",
                    (i, h["total_j"]), ha="center", va="bottom", fontsize=7)
    kinds = [k for k, _ in bars]
    for i in range(1, len(kinds)):
        if kinds[i] != kinds[i - 1]:
            ax.axvline(i - 0.5, color="k", linestyle="--", linewidth=0.8)
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([_host_label(h, by) for _, h in bars], fontsize=7)
    ax.set_ylabel("best run's energy, J (meter per bar)")
    ax.set_ylim(0, max((h["total_j"] for _, h in bars), default=1.0) * 1.2 or 1.0)
    ax.set_title(f"best joules per host: {job['workload']} (size {job['size']}), "
                 f"{job['runs']} runs", fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, history_figure_path(job, out_dir, suffix))


def history_figure_path(job: dict[str, Any], out_dir: str | Path, suffix: str = "") -> Path:
    """Where :func:`history_figure` writes one job's figure."""
    return Path(out_dir) / f"history_{_safe(job['workload'])}_{_safe(str(job['size']))}{suffix}.png"


def _host_label(h: dict[str, Any], by: str) -> str:
    """``vm:6a0c356f`` over ``AMD EPYC, 2 vCPUs`` (one line per host of a multi-host run)."""
    lines = []
    for host in h["hosts"]:
        desc = f"{host['cpu_model'] or 'CPU ?'}, {host['vcpus'] or '?'} vCPUs"
        name = (host["hostname"] or host["host"]) if by == "machine" else host["host"]
        lines.append(f"{name}\n{desc}")
    return "\n".join(lines) or "?"
