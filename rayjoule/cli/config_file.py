"""A ``--config`` file's command tables (``[compare]``, ``[tune]``) as option defaults.

Why apart from :mod:`.common`: ``[run]`` is RunConfig's (:mod:`rayjoule.core.config`); the
other tables set a command's own argparse options, and checking their values against each
option (its type, its choices, true/false only for switches) is a job of its own.
"""

from __future__ import annotations

import argparse


def file_defaults(parser: argparse.ArgumentParser, path: str | None, table: str) -> None:
    """Let a ``--config`` TOML file's ``[table]`` set this command's own option defaults.

    The precedence stays arguments > environment > file > defaults: the file only changes
    defaults, so anything given on the command line wins. Unknown keys and values of the
    wrong type are bad input.
    """
    from rayjoule.core.config import read_config_file
    from rayjoule.core.errors import ConfigError

    if path is None:
        return
    values = read_config_file(path).get(table, {})
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path}: [{table}] must be a table")
    actions = {a.dest: a for a in parser._actions}
    defaults = {}
    for key, value in values.items():
        dest = key.replace("-", "_")
        action = actions.get(dest)
        if action is None or dest in ("help", "version", "config"):
            raise ConfigError(f"config file {path}: unknown setting {key!r} in [{table}]")
        if isinstance(value, dict | list):
            raise ConfigError(f"config file {path}: [{table}] {key} must be a single value")
        flag = action.nargs == 0  # --keep-alive and the like: a TOML true/false
        if isinstance(value, bool) != flag:
            raise ConfigError(f"config file {path}: [{table}] {key} = {value!r}: give "
                              + ("true or false" if flag else "a value, not true/false"))
        if not flag:
            value = str(value)
            try:
                value = value if action.type is None else action.type(value)
            except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
                why = f": {exc}" if isinstance(exc, argparse.ArgumentTypeError) else ""
                raise ConfigError(f"config file {path}: [{table}] {key} = {value!r} is not "
                                  f"a valid value{why}") from None
            if action.choices is not None and value not in action.choices:
                raise ConfigError(f"config file {path}: [{table}] {key} = {value!r} must be "
                                  f"one of {', '.join(map(str, action.choices))}")
        defaults[dest] = value
    parser.set_defaults(**defaults)
