"""Which physical host is this? hostname + kernel boot id.

Several Ray nodes on one machine (a simulated cluster, containers sharing a
kernel) share one set of energy counters, so meters are per physical host.
The boot id is the same for every process of one running kernel and changes
at reboot, so ``hostname:bootid`` tells hosts apart where hostnames repeat.

Test hook: ``RAYJOULE_HOST_KEY`` set in a Ray node's environment (its raylet's,
hence its workers') overrides the key, so Ray nodes on one machine can pose as
separate physical hosts (the network-namespace test cluster,
``tests/tests_support/netns_cluster.py``). Give such a node a meter of its own
(e.g. a fake powercap tree through ``RAYJOULE_POWERCAP_ROOT``), never the
``tdp`` model: every node on the machine reads the same ``/proc/stat``, so each
would meter the whole machine.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
#: environment variable that overrides the host key (a documented test hook, see above)
HOST_KEY_ENV = "RAYJOULE_HOST_KEY"


@functools.cache
def host_key() -> str:
    """A stable identifier of this physical host for this boot, e.g. ``vm1:3f2a9c1e``.

    ``RAYJOULE_HOST_KEY`` (stripped, when not empty) wins: a test cluster's node poses as
    a host of its own.
    """
    override = os.environ.get(HOST_KEY_ENV, "").strip()
    if override:
        return override
    try:
        boot = BOOT_ID_PATH.read_text().strip().replace("-", "")[:8]
    except OSError:
        boot = "noboot"
    return f"{socket.gethostname()}:{boot}"
