"""Which physical host is this? hostname + kernel boot id.

Several Ray nodes on one machine (a simulated cluster, containers sharing a
kernel) share one set of energy counters, so meters are per physical host.
The boot id is the same for every process of one running kernel and changes
at reboot, so ``hostname:bootid`` tells hosts apart where hostnames repeat.
"""

from __future__ import annotations

import functools
import socket
from pathlib import Path

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


@functools.cache
def host_key() -> str:
    """A stable identifier of this physical host for this boot, e.g. ``vm1:3f2a9c1e``."""
    try:
        boot = BOOT_ID_PATH.read_text().strip().replace("-", "")[:8]
    except OSError:
        boot = "noboot"
    return f"{socket.gethostname()}:{boot}"
