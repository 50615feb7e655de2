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


class StoreFailed(RayjouleError):
    """A write to the results store failed during the work (a full disk, an I/O error):
    no fault of the input, so exit 1 with the runs stored before it kept, not exit 2."""


class StoreBusy(StoreFailed):
    """The results store stayed locked by another process's write past the wait, when the
    command opened it or later when a run wrote to it (exit 1, not 2)."""


class UnmeteredHosts(RayjouleError):
    """Tasks ran on hosts that no meter saw: their energy cannot be attributed.

    ``hosts`` maps each such host to how many tasks ran there.
    """

    def __init__(self, hosts: dict[str, int]) -> None:
        self.hosts = dict(hosts)
        listing = ", ".join(f"{h} ({n} task{'s' if n != 1 else ''})"
                            for h, n in sorted(self.hosts.items()))
        super().__init__(f"tasks ran on host(s) that no meter saw: {listing}")
