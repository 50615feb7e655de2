"""The one base exception of the ``rayjoule`` package.

Every error a user can fix (bad configuration, unreachable cluster, unknown
framework) derives from :class:`RayjouleError`, so the command lines can turn
them into one clear line and exit status 2.
"""


class RayjouleError(Exception):
    """Base class of rayjoule's user-actionable errors."""


class ConfigError(RayjouleError):
    """A run, tune or compare configuration is invalid; the message names the field."""


class RunFailed(RayjouleError):
    """The work itself failed (a task raised, a worker died); the run is stored as failed."""
