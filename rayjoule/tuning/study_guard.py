"""The Optuna storage and study a tune will write, checked before anything is written.

Why apart from the tuners: both tuners (workloads and programs) resume a study by name,
and a bad ``--storage`` or ``--study-name`` must be bad input — one line, exit 2 — with
every file as it was. Opening an SQLite URL through Optuna creates the file and its tables
(in a results store or any other SQLite file it is pointed at), and resuming a study that
tunes something else would overwrite its description and mix its trials with ours. So an
SQLite storage is only *read* here (a missing one is created later, by the tune), and an
existing study must describe the same tune.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rayjoule.core.errors import ConfigError

#: tables every Optuna RDB storage has from its first commit on (its schema's own names):
#: not ``alembic_version``, which Optuna stamps after creating the others, so a storage
#: another tune is creating at this moment would look foreign (two tunes started together)
OPTUNA_TABLES = frozenset({"studies", "study_directions"})
#: the user attribute that says what a rayjoule study tunes (one of them)
KIND_KEYS = ("workload", "program")


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL as SQLAlchemy reads it (its query cut off, its
    percent-escapes decoded); None for other URLs and in-memory SQLite."""
    if not url.startswith("sqlite:///"):
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        database = make_url(url).database
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(f"--storage {url!r} is not a usable URL: {exc}") from None
    if not database or database == ":memory:":
        return None
    return Path(database).expanduser().resolve()


def check_storage(url: str, db: str | Path | None = None) -> None:
    """A usable Optuna storage, found without writing anything.

    SQLite: the results store (``--db``) is refused (Optuna would add its tables to it); an
    existing file must be an Optuna storage (a junk file or another application's database
    is refused untouched); a missing one needs an existing, writable folder. Other URLs are
    connected to, as Optuna will.
    """
    path = sqlite_path(url)
    if path is None:
        _connect(url)
        return
    if db is not None and str(db) != ":memory:" and \
            path == Path(db).expanduser().resolve():
        raise ConfigError(f"--storage {url!r} is the results store (--db); the Optuna "
                          "storage needs a file of its own")
    if path.is_dir():
        raise ConfigError(f"--storage {url!r}: {path} is a folder; give an SQLite file")
    if not path.exists():
        folder = path.parent
        if not folder.is_dir():
            raise ConfigError(f"--storage {url!r}: folder {folder} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError(f"--storage {url!r}: folder {folder} is not writable")
        return
    tables = _tables(path, url)
    if tables and not OPTUNA_TABLES <= tables:
        raise ConfigError(f"--storage {url!r}: {path} is an SQLite file of another "
                          f"application, not an Optuna storage (tables: "
                          f"{', '.join(sorted(tables)[:6])}); give another file")


def _tables(path: Path, url: str) -> set[str]:
    try:
        con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            return {r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"--storage {url!r}: {path} is not an SQLite database "
                          f"({exc})") from None


def _connect(url: str) -> Any:
    import optuna
    import sqlalchemy.exc

    try:
        return optuna.storages.get_storage(url)
    except (ValueError, ImportError, sqlalchemy.exc.SQLAlchemyError) as exc:
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"--storage {url!r} is not a usable Optuna storage: {line}") from None


def check_study(url: str, name: str, expected: Mapping[str, Any], n_objectives: int) -> None:
    """A study of that name, if the storage has one, must be this tune's: the same
    ``expected`` user attributes (what it tunes: workload, size, … or program, space) and
    as many objectives. Otherwise resuming would overwrite its description and mix trials
    of another tune into it — refused, the study untouched."""
    path = sqlite_path(url)
    if path is not None and (not path.exists() or not _tables(path, url)):
        return  # nothing stored yet
    storage = _connect(url)
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return
    attrs = storage.get_study_user_attrs(study_id)
    mine = next(k for k in KIND_KEYS if k in expected)
    theirs = next((k for k in KIND_KEYS if k in attrs), None)
    where = f"study {name!r} in {url}"
    if theirs is None:
        if storage.get_all_trials(study_id, deepcopy=False):
            raise ConfigError(f"{where} was not made by rayjoule; give another --study-name")
        return
    if theirs != mine:
        raise ConfigError(f"{where} tunes {theirs} {attrs[theirs]!r}, not a {mine}; give "
                          "another --study-name")
    for key, value in expected.items():
        if key in attrs and _plain(attrs[key]) != _plain(value):
            raise ConfigError(f"{where} was made with {key} {_short(attrs[key])}, this tune "
                              f"has {_short(value)}; give another --study-name to start a "
                              "new study")
    stored = len(storage.get_study_directions(study_id))
    if stored != n_objectives:
        raise ConfigError(f"{where} has {stored} objective(s), this tune {n_objectives}; "
                          "give another --study-name")


def _plain(value: Any) -> Any:
    """A value as it reads back from the storage (JSON: tuples become lists)."""
    return json.loads(json.dumps(value, default=str))


def _short(value: Any) -> str:
    text = json.dumps(_plain(value))
    return text if len(text) <= 80 else text[:77] + "..."
