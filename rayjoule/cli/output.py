"""Where a command's results go: ``--json`` files (or stdout), the human report's console.

Why a module of its own: every command writes through these, and the rules are subtle —
a regular file is replaced atomically, a link/FIFO/device is written through, ``-`` is
stdout (and then the human report moves to stderr), and output that is not on a terminal
is laid out for ``COLUMNS`` (80 when unset).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

#: ``--json -``: the JSON goes to stdout (and the command's human output to stderr)
STDOUT_PATH = "-"


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as JSON to ``path``; ``-`` is stdout.

    A regular file (or a new path) is written atomically, a temporary file renamed over
    it, so a crash never leaves half a JSON file behind. Anything else — a symlink
    (``/dev/stdout`` is one), a FIFO, a device — is written *through*: renaming over it
    would replace the link or the device node with a regular file.
    """
    text = json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n"
    if str(path) == STDOUT_PATH:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(path)
    if _written_through(path):
        with open(path, "w") as out:
            out.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _written_through(path: Path) -> bool:
    """True for an existing path that is not a plain regular file (a link, FIFO, device)."""
    import stat

    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode)


def human_output_to_stderr(json_path: str | None) -> bool:
    """With ``--json -`` stdout carries the JSON alone, so the human report goes to stderr."""
    return json_path is not None and str(json_path) == STDOUT_PATH


def check_not_store(path: str | Path, flag: str, db: str) -> None:
    """A file this command writes must not be its results store (``--json r.sqlite``
    would replace the store with a JSON report)."""
    from rayjoule.core.errors import ConfigError

    if str(path) != "-" and _same_file(Path(path), db):
        raise ConfigError(f"{flag} {path} is the results store (--db); give another path")


def check_writable(path: str | Path, flag: str, *, folder: bool = False,
                   make_folders: bool = False) -> Path:
    """A path this command will write: refuse it up front (exit 2) if it cannot be written.

    ``folder`` paths (``--plot DIR``, ``--out DIR``) may exist as folders or be created in
    an existing parent; file paths must not be folders. With ``make_folders`` the command
    creates missing folders (:func:`write_json` does), so the nearest existing one must be
    writable. Writability is probed by opening (an existing file, for appending) or creating
    and removing a file, not by ``os.access``, which says yes to root even where nothing
    can be written (``/proc``).
    """
    from rayjoule.core.errors import ConfigError

    if not folder and str(path) == STDOUT_PATH:
        return Path(path)
    p = Path(path).expanduser()
    if not folder and _written_through(p):
        # a link, FIFO or device is written through (write_json): its folder need not
        # take a temporary file; a FIFO is not opened here (that would wait for a reader)
        if p.is_dir():
            raise ConfigError(f"{flag} {path}: is a folder; give a file path")
        if not (_can_open_for_writing(p) if p.is_file() else os.access(p, os.W_OK)):
            raise ConfigError(f"{flag} {path}: not writable (permission denied)")
        return p
    if folder:
        if p.exists() and not p.is_dir():
            raise ConfigError(f"{flag} {path}: exists and is not a folder")
        target = p if p.is_dir() else p.parent
    else:
        if p.is_dir():
            raise ConfigError(f"{flag} {path}: is a folder; give a file path")
        if p.exists() and not _can_open_for_writing(p):
            raise ConfigError(f"{flag} {path}: not writable (permission denied)")
        target = p.parent
    target = target if str(target) else Path(".")
    if make_folders:
        while not target.exists() and target != target.parent:
            target = target.parent
        if not target.is_dir():
            raise ConfigError(f"{flag} {path}: {target} is not a folder")
    if not target.is_dir():
        raise ConfigError(f"{flag} {path}: folder {target} does not exist")
    if not _can_create_in(target):
        raise ConfigError(f"{flag} {path}: folder {target} is not writable")
    return p


def check_output_paths(dbs: str | list[str] | None, *,
                       files: Mapping[str, str | None] | None = None,
                       folders: Mapping[str, str | None] | None = None,
                       make_folders: bool = False,
                       others: Mapping[str, str | None] | None = None) -> None:
    """The paths a command will write (``{"--json": path}`` files, ``{"--plot": dir}``
    folders), refused before any work: given but empty (``--json ""`` was silently ignored,
    ``--out ""`` wrote into the working folder), a results store the command reads or
    writes (``--json r.sqlite`` replaced the store with a JSON report), or not writable
    (``make_folders``: a file's missing folders will be made, as :func:`check_writable`).
    ``others`` names more files no output may be (``{"the knobs (--space)": path}``: a
    command's inputs, tune's Optuna storage).
    """
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
            for what, other in (others or {}).items():
                if other and path != "-" and _same_file(Path(path), other):
                    raise ConfigError(f"{flag} {path} is {what}; give another path")
            check_writable(path, flag, folder=folder, make_folders=make_folders and not folder)


def _same_file(path: Path, db: str) -> bool:
    return db != ":memory:" and path.expanduser().resolve() == Path(db).expanduser().resolve()


def _can_open_for_writing(path: Path) -> bool:
    """Open for appending and close at once: the file's bytes stay as they were."""
    try:
        with open(path, "ab"):
            return True
    except OSError:
        return False


def _can_create_in(folder: Path) -> bool:
    """Create and remove a probe file: the only test that holds for root and odd mounts."""
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(prefix=".rayjoule-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def results_console(json_path: str | None = None) -> Any:
    """Where results print: stdout (stderr when ``--json -`` takes stdout).

    On a terminal rich follows its width; into a pipe or a file the width is ``COLUMNS``,
    80 when unset, and tables shrink their columns to fit rather than wrap.
    """
    from rich.console import Console

    stderr = human_output_to_stderr(json_path)
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=output_width())


def output_width() -> int:
    """``COLUMNS`` when it is a positive number, else 80 (the width of output not on a
    terminal)."""
    text = os.environ.get("COLUMNS", "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else 80


def print_table(console: Any, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]],
                *, left: Collection[str] = ()) -> None:
    """A table where it fits the console's width, else one record per line.

    A table squeezed below its natural width truncates or folds every cell until it says
    nothing (an 80-column pipe and a 14-column ranking); a record per line keeps every
    value whole. ``title`` and cells are rich markup (escape user text before).
    """
    from rich import box
    from rich.measure import Measurement
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD)
    for col in columns:
        table.add_column(col, justify="left" if col in left else "right")
    for row in rows:
        table.add_row(*row)
    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    if natural <= console.width:
        console.print(table)
        return
    console.print(title)
    for row in rows:
        console.print("  " + "; ".join(f"{col} {cell}"
                                       for col, cell in zip(columns, row, strict=True)))
