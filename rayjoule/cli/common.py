"""Shared command-line plumbing: exit codes and user-facing error lines.

DESIGN.md fixes the contract for every ``python -m rayjoule.<cmd>``:
0 = done, 2 = bad input (one clear line on stderr, no traceback),
1 = the run itself failed (results so far are kept).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def _user_errors() -> tuple[type[BaseException], ...]:
    """The exception classes whose message is meant for the user (imported lazily)."""
    from meters import MeterError
    from rayjoule.core.errors import RayjouleError
    from workloads import WorkloadError

    return (MeterError, WorkloadError, RayjouleError)


def run_command(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a command's ``main`` and map errors to DESIGN.md's exit statuses.

    >>> run_command(lambda argv: 0, [])
    0
    """
    from rayjoule.core.errors import RunFailed

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return main(argv)
    except KeyboardInterrupt:
        print("rayjoule: interrupted; results stored so far are kept", file=sys.stderr)
        return 130
    except RunFailed as exc:
        print(f"rayjoule: run failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except _user_errors() as exc:
        # an error raised inside a Ray actor arrives wrapped (RayTaskError subclasses its
        # cause's type, with the remote traceback in its message): show the cause alone
        cause = getattr(exc, "cause", None)
        message = cause if isinstance(cause, _user_errors()) else exc
        print(f"rayjoule: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically so a crash never leaves half a JSON file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2 (no usage dump)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from rayjoule import __version__

        self.add_argument("--version", action="version", version=f"rayjoule {__version__}")

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def add_workload_args(parser: argparse.ArgumentParser, default_workload: str | None = None) -> None:
    """--workload/--size/--seed/--param, shared by run, tune and compare."""
    parser.add_argument("--workload", required=default_workload is None,
                        default=default_workload,
                        help="workload name (see python -m rayjoule.workloads)")
    parser.add_argument("--size", help="problem size, e.g. 1e8 (the workload's default if omitted)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    parser.add_argument("--param", action="append", default=[], metavar="K=V",
                        help="workload parameter, repeatable (e.g. --param max_iter=500)")


def add_metering_args(parser: argparse.ArgumentParser, *, defaults: bool = True) -> None:
    """--meter/--tdp-scope/--idle-seconds/--address/--keep-alive, shared by run, tune, compare.

    ``defaults=False`` leaves every value None when not given, so ``rayjoule.run`` can let the
    environment and its config file fill them (RunConfig.resolve's precedence).
    """
    from rayjoule.core.config import TDP_SCOPES

    def default(value: Any) -> Any:
        return value if defaults else None

    parser.add_argument("--meter", default=default("auto"),
                        help="auto (default) or a meter name: rapl, perf, tdp, nvml")
    parser.add_argument("--tdp-scope", choices=TDP_SCOPES, default=default("host"),
                        help="tdp model scope: whole host (default) or the run's process tree")
    parser.add_argument("--idle-seconds", type=float, default=default(2.0),
                        help="idle baseline length (default 2)")
    parser.add_argument("--address", help="Ray cluster address (default: a local instance)")
    parser.add_argument("--keep-alive", action="store_true", default=default(False),
                        help="keep the local Ray instance (and dashboard) up afterwards")


def add_store_args(parser: argparse.ArgumentParser) -> None:
    """--db/--json, shared by the commands that run work."""
    from rayjoule.core.config import DEFAULT_DB

    parser.add_argument("--db", default=DEFAULT_DB, help="results store (default %(default)s)")
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON here")


def parse_params(items: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` → ``{"k": "v"}``; the workload converts the values to its types."""
    from rayjoule.core.errors import ConfigError

    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param expects key=value, got {item!r}")
        params[key.strip()] = value.strip()
    return params


def progress_bar(console: Any, transient: bool = False) -> Any:
    """The rich progress bar every command shows while work runs (n of N, elapsed time)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress("[progress.description]{task.description}", BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                    transient=transient)
