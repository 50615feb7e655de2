"""Human-readable reports of results (rich tables); every energy figure names its meter."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rayjoule.core.result import RunResult


def source_of(result: RunResult) -> str:
    """'[meter tdp, modelled]' — the label every printed energy figure carries."""
    return escape(f"[meter {result.meter.name}, {result.meter.kind}]")


def print_run(result: RunResult, console: Console | None = None, top: int = 5) -> None:
    """Wall time, joules (total = static + dynamic = tasks + overhead), meter and kind,
    per-stage table (pipelines), top tasks, lost hosts, summary."""
    console = console or Console()
    e = result.energy
    reps = f" (median of {len(result.repeats)} repeats)" if result.repeats else ""
    console.print(
        f"[bold]{result.workload}[/] on [bold]{result.framework}[/] — run {result.run_id}{reps}"
    )
    # short enough for an 80-column pipe with three-digit joules (wider ones wrap by word)
    console.print(f"  wall time  {result.wall_s:.3f} s")
    console.print(f"  energy     {e.total_j:.2f} J = {e.static_j:.2f} J static + "
                  f"{e.dynamic_j:.2f} J dynamic  {source_of(result)}")
    console.print(f"             {e.total_j:.2f} J = {e.tasks_j:.2f} J tasks + "
                  f"{e.overhead_j:.2f} J overhead (in no task)")
    for h in result.hosts:
        console.print(f"  host {h.host}: idle {h.idle_w:.2f} W ({h.idle_policy}); "
                      f"overhead {h.overhead_j:.2f} J")
        if not h.complete:
            console.print(f"  [yellow]host {h.host} was lost mid-run: its energy "
                          f"({h.energy.total_j:.2f} J) is what was measured until then[/]")
    if len(result.stages) > 1:
        table = Table(title=f"stages {source_of(result)}", show_edge=False)
        table.add_column("stage", justify="right", overflow="fold")
        for col in ("tasks", "cpus", "wall s", "static J", "dynamic J", "overhead J",
                    "total J"):
            table.add_column(col, justify="right")
        for st in result.stages:
            se = st.energy
            table.add_row(st.name, str(st.tasks), f"{st.num_cpus:g}", f"{st.wall_s:.3f}",
                          f"{se.static_j:.2f}", f"{se.dynamic_j - se.overhead_j:.2f}",
                          f"{se.overhead_j:.2f}", f"{se.total_j:.2f}")
        console.print(table)
    if result.tasks:
        table = Table(title=f"top {min(top, len(result.tasks))} of {len(result.tasks)} tasks "
                            f"by energy {source_of(result)}", show_edge=False)
        for col in ("stage", "task", "host", "pid", "seconds", "cpu s", "static J",
                    "dynamic J", "energy J"):
            # names fold inside their cell rather than lose their end to an ellipsis
            table.add_column(col, justify="right",
                             overflow="fold" if col in ("stage", "host") else "ellipsis")
        for t in sorted(result.tasks, key=lambda t: -t.energy_j)[:top]:
            table.add_row(t.stage, str(t.task_id), t.host, str(t.pid), f"{t.wall_s:.3f}",
                          f"{t.cpu_s:.3f}", f"{t.static_j:.3f}", f"{t.dynamic_j:.3f}",
                          f"{t.energy_j:.3f}")
        console.print(table)
    console.print("  summary     " + ", ".join(f"{k}={v}" for k, v in result.summary.items()))


def print_storage(url: str, study_name: str, console: Console) -> None:
    """Where the Optuna study lives, the URL alone on its line (never folded: it is copied
    into ``--storage`` or ``optuna-dashboard``)."""
    console.print(f"optuna storage (study {study_name}):", markup=False, highlight=False)
    console.print(f"  {url}", markup=False, highlight=False, soft_wrap=True)
