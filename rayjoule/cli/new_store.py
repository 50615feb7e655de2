"""A results store this command created is removed again when bad input stops it.

Why: the project's rule is that bad input leaves nothing behind, and some of it is found only
once a session starts (a meter that is not there, a framework or a Lithops config refused),
after :func:`rayjoule.runs.session.run` opened — and so created — the store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from rayjoule.core.errors import RayjouleError


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


def _bad_input(exc: BaseException) -> bool:
    from meters import MeterError
    from rayjoule.core.errors import ConfigError
    from workloads import WorkloadError

    return isinstance(exc, ConfigError | MeterError | WorkloadError)


def _holds_no_run(path: Path) -> bool:
    from rayjoule.runs.store import Store

    if not path.is_file():
        return False
    try:
        with Store.open_read_only(path) as store:
            return not store.runs()
    except RayjouleError:
        return False
