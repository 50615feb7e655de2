"""How a command stops when asked (Ctrl-C, SIGTERM): the handlers, the line, the status.

Why apart from :mod:`.common`: the stop's kind is decided in one place even where a
library re-raises a plain ``KeyboardInterrupt`` (Ray's calls do) or Python drops the
exception (:mod:`rayjoule.core.interrupts`); the commands that print their own stop line
(``tune``, ``profile``) ask here what to say and which status to return.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rayjoule.core import interrupts

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so it unwinds exactly like Ctrl-C does."""


def on_sigterm(signum: int, frame: Any) -> None:
    interrupts.request(Terminated)
    raise Terminated()


def on_sigint(signum: int, frame: Any) -> None:
    interrupts.request(KeyboardInterrupt)
    raise KeyboardInterrupt()


def unraisable_hook(previous: Callable[[Any], object]) -> Callable[[Any], object]:
    """A ``sys.unraisablehook`` that keeps a dropped stop off the user's terminal.

    Python prints "Exception ignored in: …" and a traceback when the handlers' interrupt
    lands where it cannot propagate (logging's at-fork hook, a finaliser), and drops it; the
    stop was recorded first and ends the command at its next run (:mod:`rayjoule.core.
    interrupts`), so that traceback is noise beside the command's one line (CI saw it after a
    Ctrl-C during a fork). Anything else goes to ``previous``."""
    def hook(unraisable: Any) -> None:
        exc_type = getattr(unraisable, "exc_type", None)
        if isinstance(exc_type, type) and issubclass(exc_type, KeyboardInterrupt) and \
                interrupts.requested() is not None:
            return
        previous(unraisable)
    return hook


def terminated(exc: BaseException | None = None) -> bool:
    """Whether the stop was SIGTERM: the exception says so, or the signal handler recorded
    it (a library that catches KeyboardInterrupt and raises a plain one, as Ray's calls can,
    loses the subclass on the way)."""
    return isinstance(exc, Terminated) or interrupts.requested() is Terminated


def interrupted_line(exc: BaseException | None = None) -> str:
    return "terminated (SIGTERM)" if terminated(exc) else "interrupted"


def interrupted_status(exc: BaseException | None = None) -> int:
    return EXIT_TERMINATED if terminated(exc) else EXIT_INTERRUPTED
