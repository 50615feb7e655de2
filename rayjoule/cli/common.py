"""Shared command-line plumbing: exit codes and user-facing error lines.

DESIGN.md fixes the contract for every ``python -m rayjoule.<cmd>``:
0 = done, 2 = bad input (one clear line on stderr, no traceback),
1 = the run itself failed (results so far are kept).
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from rayjoule.cli.stops import (
    interrupted_line,
    interrupted_status,
    on_sigint,
    on_sigterm,
    unraisable_hook,
)
from rayjoule.core import interrupts

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
LOG_LEVEL_ENV = "RAYJOULE_LOG_LEVEL"
NOISY_LOGGERS = ("ray", "lithops", "urllib3", "botocore", "asyncio")

log = logging.getLogger(__name__)


def _user_errors() -> tuple[type[BaseException], ...]:
    """The exception classes whose message is meant for the user (imported lazily)."""
    from meters import MeterError
    from rayjoule.core.errors import RayjouleError
    from workloads import WorkloadError

    return (MeterError, WorkloadError, RayjouleError)


def run_command(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a command's ``main`` and map errors to DESIGN.md's exit statuses.

    SIGTERM is handled like Ctrl-C (completed work kept, the current run stored as
    interrupted) and exits 143; Ctrl-C exits 130. An error during the work is one line
    and exit 1 (the traceback only with ``--log-level debug``).

    >>> run_command(lambda argv: 0, [])
    0
    """
    from rayjoule.core.errors import RunFailed, StoreFailed

    configure_logging(os.environ.get(LOG_LEVEL_ENV) or None)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = previous_int = previous_unraisable = None
    if main_thread:  # (signals reach the main thread only: another's command has no say)
        interrupts.clear()
    try:
        if main_thread:
            previous_unraisable = sys.unraisablehook
            sys.unraisablehook = unraisable_hook(previous_unraisable)
            previous = signal.signal(signal.SIGTERM, on_sigterm)
            # a command started in the background by a non-interactive shell inherits SIGINT
            # as ignored; Ctrl-C (or kill -INT) must still stop it the documented way
            previous_int = signal.signal(signal.SIGINT, on_sigint)
        code = main(argv)
        if code == EXIT_OK:  # an interrupt Python swallowed on the way (an at-fork hook,
            interrupts.raise_if_requested()  # a finaliser) is still the user's word
        return code
    except KeyboardInterrupt as exc:
        print(f"rayjoule: {interrupted_line(exc)}; results stored so far are kept",
              file=sys.stderr)
        return interrupted_status(exc)
    except RunFailed as exc:
        print(f"rayjoule: run failed: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except StoreFailed as exc:  # not the input's fault: the store was busy or failed
        print(f"rayjoule: failed: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except _user_errors() as exc:
        # an error raised inside a Ray actor arrives wrapped (RayTaskError subclasses its
        # cause's type, with the remote traceback in its message): show the cause alone
        cause = getattr(exc, "cause", None)
        message = cause if isinstance(cause, _user_errors()) else exc
        print(f"rayjoule: error: {_one_line(message)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # a full disk, a vanished folder: the work failed, not the input
        log.debug("command failed", exc_info=True)
        print(f"rayjoule: failed: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)
        if main_thread:  # after the handlers: none can record a request past this point
            interrupts.clear()
        if previous_unraisable is not None:
            sys.unraisablehook = previous_unraisable


def _one_line(exc: BaseException | str) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def configure_logging(level: str | None) -> None:
    """Library log records on stderr at ``level``; with None (the default) none at all.

    A command's stderr is its one line (an error, an interruption), so log records of
    rayjoule, meters, workloads, Ray and Lithops reach it only when asked for with
    ``--log-level`` or ``RAYJOULE_LOG_LEVEL``. Ray's and Lithops' own warnings need info or
    debug even then.
    """
    if level is None:
        # a handler that drops every record, so logging's last-resort handler stays unused
        logging.basicConfig(level=logging.WARNING, handlers=[logging.NullHandler()],
                            force=True)
        for noisy in NOISY_LOGGERS:
            logging.getLogger(noisy).setLevel(logging.CRITICAL + 1)
        return
    value = getattr(logging, str(level).upper(), None)
    if not isinstance(value, int):
        from rayjoule.core.errors import ConfigError

        raise ConfigError(f"log level must be one of debug, info, warning, error; got {level!r}")
    logging.basicConfig(level=value, format="%(levelname)s %(name)s: %(message)s", force=True)
    quiet = logging.ERROR if value >= logging.WARNING else value
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(quiet)


_INVOKED_AS: contextvars.ContextVar[str] = contextvars.ContextVar(
    "rayjoule_invoked_as", default="python -m rayjoule.")


@contextlib.contextmanager
def invoked_as(prefix: str) -> Iterator[None]:
    """Name commands ``prefix + command`` in usage and error lines while the block runs
    (the ``rayjoule`` console script says ``rayjoule run``, ``python -m`` says
    ``python -m rayjoule.run``)."""
    token = _INVOKED_AS.set(prefix)
    try:
        yield
    finally:
        _INVOKED_AS.reset(token)


def command_name(prog: str) -> str:
    """``python -m rayjoule.run`` as the user invoked it (``rayjoule run`` from the script).

    >>> command_name("python -m rayjoule.run")
    'python -m rayjoule.run'
    """
    default = "python -m rayjoule."
    if prog.startswith(default):
        return _INVOKED_AS.get() + prog.removeprefix(default)
    return prog


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2 (no usage dump)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if isinstance(kwargs.get("prog"), str):
            kwargs["prog"] = command_name(kwargs["prog"])
        super().__init__(*args, **kwargs)
        from rayjoule import __version__

        self.add_argument("--version", action="version", version=f"rayjoule {__version__}")
        self.add_argument("--log-level", default=None,
                          help="show library log records at this level on stderr: debug, info, "
                               f"warning or error (default: none; or {LOG_LEVEL_ENV})")

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed = super().parse_args(args, namespace)
        if parsed.log_level:
            configure_logging(parsed.log_level)
        return parsed

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def add_workload_args(parser: argparse.ArgumentParser) -> None:
    """--workload/--size/--seed/--param, shared by run, tune and compare."""
    parser.add_argument("--workload",
                        help="workload or pipeline name, or package.module:NAME "
                             "(default pi; see python -m rayjoule.workloads)")
    parser.add_argument("--size", help="problem size, e.g. 1e8 (the workload's default if omitted)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--param", action="append", default=[], metavar="K=V",
                        help="workload parameter, repeatable (e.g. --param max_iter=500)")


def add_metering_args(parser: argparse.ArgumentParser) -> None:
    """--meter/--tdp-scope/--idle-seconds/--tdp-watts/--cpu-threads/--address/--keep-alive
    and --config, shared by every command that runs work.

    Every value is None when not given, so the environment and the ``--config`` file can
    fill it (:func:`resolve_config`: arguments > environment > file > defaults).
    """
    from rayjoule.core.config import TDP_SCOPES

    parser.add_argument("--meter", help="auto (default) or a meter name: rapl, perf, tdp, nvml")
    parser.add_argument("--tdp-scope", choices=TDP_SCOPES,
                        help="tdp model scope: whole host (default) or the run's process tree")
    parser.add_argument("--idle-seconds", type=float, help="idle baseline length (default 2)")
    parser.add_argument("--tdp-watts", type=float,
                        help="the CPU's TDP for the tdp model, overriding the CPU table "
                             "(or RAYJOULE_TDP_WATTS)")
    parser.add_argument("--cpu-threads", type=int,
                        help="hardware threads the TDP is shared by (with --tdp-watts; "
                             "or RAYJOULE_CPU_THREADS)")
    parser.add_argument("--max-hours", type=float,
                        help="refuse a run estimated to take longer (default 1; or "
                             "RAYJOULE_MAX_HOURS)")
    parser.add_argument("--address", help="Ray cluster address (default: a local instance; "
                                          "or RAY_ADDRESS)")
    parser.add_argument("--keep-alive", action="store_true", default=None,
                        help="keep the local Ray instance (and dashboard) up afterwards")
    parser.add_argument("--config", metavar="FILE",
                        help="TOML file: [run] settings, and a table for this command's own")


def add_stage_args(parser: argparse.ArgumentParser) -> None:
    """--data-store, shared by the commands that run pipelines natively or on Lithops."""
    parser.add_argument("--data-store", metavar="URI",
                        help="where native and Lithops stages hand data over: a folder or "
                             "s3://bucket/prefix (default: a temporary folder)")


def metering_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The RunConfig fields the shared arguments set (None = not given)."""
    return {
        "workload": args.workload, "size": args.size, "seed": args.seed,
        "params": parse_params(args.param) or None, "meter": args.meter,
        "tdp_scope": args.tdp_scope, "idle_seconds": args.idle_seconds,
        "tdp_watts": args.tdp_watts, "cpu_threads": args.cpu_threads,
        "address": args.address, "keep_alive": args.keep_alive, "max_hours": args.max_hours,
        "data_store": getattr(args, "data_store", None),
    }


def resolve_config(fields: dict[str, Any], config_file: str | None) -> Any:
    """The one precedence for every command: arguments > environment > file > defaults."""
    from rayjoule.core.config import RunConfig

    return RunConfig.resolve(fields, file=config_file)


def add_store_args(parser: argparse.ArgumentParser, *, writes: bool = True) -> None:
    """--db/--json, shared by the commands that run work (and those that read a store).

    With ``writes`` (the default), ``--db`` must be a store this command can create or
    write; commands that only read a store pass ``writes=False`` and report a missing store
    themselves.
    """
    from rayjoule.core.config import DEFAULT_DB

    parser.add_argument("--db", default=DEFAULT_DB, type=store_path if writes else str,
                        help="results store (default %(default)s)")
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
    """The rich progress bar every command shows while work runs (n of N, elapsed time).

    A ``transient`` bar is off when its console is not a terminal: rich would leave an
    empty line there, and a command's stderr holds only its one line.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    return Progress("[progress.description]{task.description}", BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                    transient=transient, disable=transient and not console.is_terminal)


def parse_per_stage(name: str, text: str | None, kind: type = int) -> Any:
    """``"8"`` → 8; ``"pca=2,train=8"`` → ``{"pca": 2, "train": 8}`` (for --tasks, --num-cpus).

    The pipeline checks the stage names; this only parses.

    >>> parse_per_stage("tasks", "pca=2,train=8")
    {'pca': 2, 'train': 8}
    >>> parse_per_stage("num_cpus", "0.5", float)
    0.5
    """
    from rayjoule.core.errors import ConfigError

    if text is None:
        return None
    text = str(text).strip()
    if "=" not in text:
        return _number(name, text, kind)
    out = {}
    for item in text.split(","):
        stage, sep, value = item.partition("=")
        if not sep or not stage.strip() or not value.strip():
            raise ConfigError(f"--{name.replace('_', '-')} expects N or stage=N,stage=N; "
                              f"got {text!r}")
        if stage.strip() in out:
            raise ConfigError(f"--{name.replace('_', '-')} gives stage {stage.strip()!r} "
                              f"twice; got {text!r}")
        out[stage.strip()] = _number(f"{name} of stage {stage.strip()!r}", value.strip(), kind)
    return out


def _number(name: str, text: str, kind: type) -> Any:
    import math

    from rayjoule.core.errors import ConfigError

    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {text!r}")
    if kind is int:
        if value != int(value):
            raise ConfigError(f"{name} must be a whole number, got {text!r}")
        return int(value)
    return value


def store_path(text: str) -> str:
    """``--db``'s type: a results store this command can create or write (argparse calls it,
    so an unwritable store is a usage error, exit 2, before any work)."""
    from rayjoule.cli.output import check_writable
    from rayjoule.core.errors import ConfigError

    if text == ":memory:":
        return text
    try:
        check_writable(text, "--db")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--db ")) from None
    return text
