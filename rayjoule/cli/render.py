"""Human-readable reports of results (rich tables); every energy figure names its meter."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rayjoule.core.result import RunResult


def check_output_paths(dbs: str | list[str] | None, *,
                       files: Mapping[str, str | None] | None = None,
                       folders: Mapping[str, str | None] | None = None) -> None:
    """The paths a command will write (``{"--json": path}`` files, ``{"--plot": dir}``
    folders), refused before any work: given but empty (``--json ""`` was silently ignored,
    ``--out ""`` wrote into the working folder), a results store the command reads or
    writes (``--json r.sqlite`` replaced the store with a JSON report), or not writable.

    (It belongs beside :func:`rayjoule.cli.output.check_writable`; it lives here until
    that module takes it.)
    """
    from rayjoule.cli.output import check_not_store, check_writable
    from rayjoule.core.errors import ConfigError

    stores = [dbs] if isinstance(dbs, str) else list(dbs or [])
    for paths, folder in ((files or {}, False), (folders or {}, True)):
        for flag, path in paths.items():
            if path is None:
                continue
            if not path.strip():
                raise ConfigError(f"{flag} needs a " + ("folder path" if folder else
                                                          "file path (or - for stdout)"))
            for db in stores:
                check_not_store(path, flag, db)
                if not folder and path != "-":  # write_json's temporary file beside it
                    tmp = Path(path).with_name(Path(path).name + ".tmp")
                    if _same_file(tmp, db):
                        raise ConfigError(f"{flag} {path}: its temporary file {tmp} is the "
                                          "results store (--db); give another path")
            check_writable(path, flag, folder=folder)


@contextlib.contextmanager
def no_new_store_on_bad_input(db: str) -> Iterator[None]:
    """A store this command created is removed again when bad input stops it before any run
    (a meter, a framework or a Lithops config refused only once the session starts): the
    project's rule is that bad input leaves no file behind. A store that existed before, or
    one that holds a run (another process's, meanwhile), is never touched."""
    path = Path(db).expanduser()
    existed = db == ":memory:" or path.exists()
    try:
        yield
    except BaseException as exc:
        if not existed and _bad_input(exc) and _holds_no_run(path):
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)
        raise


def _same_file(path: Path, db: str) -> bool:
    return db != ":memory:" and path.expanduser().resolve() == Path(db).expanduser().resolve()


def _bad_input(exc: BaseException) -> bool:
    from meters import MeterError
    from rayjoule.core.errors import ConfigError
    from workloads import WorkloadError

    return isinstance(exc, ConfigError | MeterError | WorkloadError)


def _holds_no_run(path: Path) -> bool:
    import sqlite3

    if not path.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
    except sqlite3.Error:
        return False


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
