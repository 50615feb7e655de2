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

A VM shows its own vCPUs, not the package's: ``siblings`` and ``cpu cores``
describe the package only on bare metal. x86 guests carry the ``hypervisor``
flag (CPUID leaf 1, ECX bit 31, which KVM, Xen, Hyper-V and VMware set), so
:attr:`CpuInfo.hypervisor` tells the two apart. arm64 prints no model name,
only ``CPU implementer`` and ``CPU part`` (the MIDR fields), which
:func:`arm_core_name` names from the kernel's ``arch/arm64/include/asm/cputype.h``.
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
    #: True: the ``hypervisor`` flag is set (a VM); None: no ``flags`` line (arm64, unknown)
    hypervisor: bool | None = None
    #: arm64 ``CPU implementer`` / ``CPU part`` (hex strings as printed), else None
    arm_implementer: str | None = None
    arm_part: str | None = None

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
    flags = first.get("flags")
    return CpuInfo(vendor=vendor, model=model, logical=logical, cores=cores, sockets=sockets,
                   siblings=siblings, cores_per_socket=per_socket, smt=smt, source=source,
                   package_of=package_of,
                   hypervisor=None if flags is None else "hypervisor" in flags.split(),
                   arm_implementer=first.get("cpu implementer"),
                   arm_part=first.get("cpu part"))


#: MIDR implementer codes and (implementer, part) → core, as in the kernel's ``cputype.h``.
ARM_IMPLEMENTERS = {0x41: "Arm", 0x48: "HiSilicon", 0x4E: "NVIDIA", 0x51: "Qualcomm",
                    0x61: "Apple", 0xC0: "Ampere", 0x46: "Fujitsu"}
ARM_PARTS = {
    (0x41, 0xD03): "Cortex-A53", (0x41, 0xD05): "Cortex-A55", (0x41, 0xD07): "Cortex-A57",
    (0x41, 0xD08): "Cortex-A72", (0x41, 0xD0B): "Cortex-A76", (0x41, 0xD0C): "Neoverse N1",
    (0x41, 0xD40): "Neoverse V1", (0x41, 0xD49): "Neoverse N2", (0x41, 0xD4F): "Neoverse V2",
    (0x41, 0xD8E): "Neoverse N3", (0x48, 0xD01): "TaiShan v110 (Kunpeng 920)",
    (0xC0, 0xAC3): "AmpereOne", (0x46, 0x001): "A64FX",
}


def arm_core_name(implementer: str | None, part: str | None) -> str | None:
    """"implementer 0x41 (Arm), part 0xd0c (Neoverse N1)" from cpuinfo's hex fields, or None.

    >>> arm_core_name("0x41", "0xd0c")
    'implementer 0x41 (Arm), part 0xd0c (Neoverse N1)'
    """
    if implementer is None or part is None:
        return None
    try:
        imp, prt = int(implementer, 16), int(part, 16)
    except ValueError:
        return f"implementer {implementer}, part {part}"
    vendor = ARM_IMPLEMENTERS.get(imp, "unknown implementer")
    core = ARM_PARTS.get((imp, prt), "unknown part")
    return f"implementer {implementer} ({vendor}), part {part} ({core})"


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
