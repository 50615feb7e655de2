"""What ``/proc/cpuinfo`` says about the CPU: vendor, model, and whether a logical CPU is a thread.

Why one parser: the tdp model needs the model name (to find the TDP) and
whether a vCPU is a hardware thread or a whole core (to divide the TDP by
threads or by cores); the RAPL meter needs the vendor (AMD's package counter
is per socket, Intel's per die, see :mod:`meters._powercap`); and every run
records the host. All three read the same file, whose path is a parameter,
else ``$RAYJOULE_CPUINFO``, else ``/proc/cpuinfo`` (tests point it at
recorded files, never patch ``open``).

x86 Linux prints one block per logical CPU (``arch/x86/kernel/cpu/proc.c``)
with ``vendor_id``, ``model name``, ``physical id`` (socket), ``siblings``
(logical CPUs in that socket), ``core id`` and ``cpu cores`` (cores in that
socket). A logical CPU is a hardware thread (SMT on) when ``siblings`` >
``cpu cores``; with SMT off, or a VM whose vCPUs are whole cores, the two are
equal. Hypervisors pass this topology through (an AWS m5.large shows
``siblings 2``, ``cpu cores 1``; the same family with one thread per core
shows ``siblings 1``, ``cpu cores 1``). Other architectures (arm64) print
none of these fields: SMT is then unknown (``None``), never guessed here.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CPUINFO_ENV = "RAYJOULE_CPUINFO"
DEFAULT_CPUINFO = Path("/proc/cpuinfo")

#: ``vendor_id`` values of the x86 vendors the meters distinguish.
INTEL = "GenuineIntel"
AMD = "AuthenticAMD"
HYGON = "HygonGenuine"


def cpuinfo_path(path: str | os.PathLike[str] | None = None) -> Path:
    """``path``, else ``$RAYJOULE_CPUINFO``, else ``/proc/cpuinfo``."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(CPUINFO_ENV) or DEFAULT_CPUINFO)


@dataclass(frozen=True)
class CpuInfo:
    """The CPU as ``/proc/cpuinfo`` describes it (None: the file does not say).

    ``logical`` counts the ``processor`` blocks; ``cores`` the distinct
    (``physical id``, ``core id``) pairs (or ``cpu cores`` × sockets when core
    ids are missing); ``smt`` is True when a logical CPU is a hardware thread.
    """

    vendor: str | None
    model: str | None
    logical: int
    cores: int | None
    sockets: int | None
    siblings: int | None
    cores_per_socket: int | None
    smt: bool | None
    source: str
    #: (processor, physical id) of each logical CPU that names its socket
    package_of: tuple[tuple[int, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["package_of"] = [list(pair) for pair in self.package_of]
        return d


def _blocks(text: str) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if current and not line.strip():
                blocks.append(current)
                current = {}
            continue
        key = key.strip().lower()
        if key == "processor" and "processor" in current:
            blocks.append(current)
            current = {}
        current[key] = value.strip()
    if current:
        blocks.append(current)
    return [b for b in blocks if "processor" in b]


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def parse_cpuinfo(text: str, source: str = "<text>") -> CpuInfo:
    """Parse the text of ``/proc/cpuinfo``.

    >>> block = ("processor\\t: {p}\\nvendor_id\\t: GenuineIntel\\n"
    ...          "model name\\t: Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz\\n"
    ...          "physical id\\t: 0\\nsiblings\\t: 2\\ncore id\\t\\t: 0\\ncpu cores\\t: 1\\n\\n")
    >>> info = parse_cpuinfo(block.format(p=0) + block.format(p=1))
    >>> info.logical, info.cores, info.sockets, info.smt
    (2, 1, 1, True)
    """
    blocks = _blocks(text)
    first = blocks[0] if blocks else {}
    model = next((b["model name"] for b in blocks if b.get("model name")), None)
    vendor = next((b["vendor_id"] for b in blocks if b.get("vendor_id")), None)
    logical = len(blocks)
    sockets_seen = {b["physical id"] for b in blocks if "physical id" in b}
    sockets = len(sockets_seen) if sockets_seen else None
    siblings = _int(first.get("siblings"))
    per_socket = _int(first.get("cpu cores"))
    pairs = {(b.get("physical id"), b["core id"]) for b in blocks if "core id" in b}
    if pairs and all("core id" in b for b in blocks):
        cores: int | None = len(pairs)
    elif per_socket is not None:
        cores = per_socket * (sockets or 1)
    else:
        cores = None
    if siblings is not None and per_socket is not None:
        smt: bool | None = siblings > per_socket
    elif cores is not None and logical:
        smt = logical > cores
    else:
        smt = None
    package_of = tuple((p, s) for b in blocks
                       if (p := _int(b.get("processor"))) is not None
                       and (s := _int(b.get("physical id"))) is not None)
    return CpuInfo(vendor=vendor, model=model, logical=logical, cores=cores, sockets=sockets,
                   siblings=siblings, cores_per_socket=per_socket, smt=smt, source=source,
                   package_of=package_of)


def read_cpuinfo(path: str | os.PathLike[str] | None = None) -> CpuInfo:
    """Read and parse ``path`` (see :func:`cpuinfo_path`); raises ``OSError`` if unreadable."""
    p = cpuinfo_path(path)
    return parse_cpuinfo(p.read_text(encoding="utf-8", errors="replace"), source=str(p))


def read_cpu_model(path: str | os.PathLike[str] | None = None) -> str | None:
    """The first ``model name`` of the cpuinfo file, or None if absent or unreadable."""
    try:
        return read_cpuinfo(path).model
    except OSError:
        return None
