"""A stop request (Ctrl-C, SIGTERM) that outlives a swallowed ``KeyboardInterrupt``.

Why: Python raises the signal handler's exception wherever the main thread is. Inside an
at-fork hook, a finaliser or a weakref callback it is printed as "Exception ignored" and
lost, and the command would run on to its end — seen in CI, where a Ctrl-C that came while
the native framework forked left a tune of 50 trials running. So the commands' signal
handlers also record the request here, and every run and measured block checks it before
it begins (:func:`raise_if_requested`): a lost interrupt ends the command at the next run.
"""

from __future__ import annotations

_requested: type[KeyboardInterrupt] | None = None


def request(kind: type[KeyboardInterrupt] = KeyboardInterrupt) -> None:
    """Record that the user asked to stop (called by a signal handler)."""
    global _requested
    _requested = kind


def clear() -> None:
    """Forget a request (a command starts and ends with none pending)."""
    global _requested
    _requested = None


def requested() -> type[KeyboardInterrupt] | None:
    """The kind of interrupt asked for, or None."""
    return _requested


def raise_if_requested() -> None:
    """Raise the requested interrupt again, so the work stops before the next unit.

    >>> clear(); raise_if_requested()  # nothing asked: nothing raised
    >>> request(Terminated := type("Terminated", (KeyboardInterrupt,), {}))
    >>> try:  # (a doctest cannot expect a KeyboardInterrupt: it would stop the test run)
    ...     raise_if_requested()
    ... except KeyboardInterrupt as stop:
    ...     print(type(stop).__name__)
    Terminated
    >>> clear()
    """
    if _requested is not None:
        raise _requested()
