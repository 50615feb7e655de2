"""Describe the machine a run's energy was measured or modelled on.

Why: joules from two machines are only comparable when one knows what each
machine was — the CPU model, how many vCPUs and whether they were hardware
threads or whole cores, the memory, the kernel (which decides, for instance,
how RAPL die zones look; see :mod:`meters._powercap`). Every run stores this
next to its meter's :attr:`~meters.Meter.basis`.
"""

from __future__ import annotations

import os
import platform
import socket
from typing import Any

import psutil

from meters._cpuinfo import read_cpuinfo


def describe_host(cpuinfo: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """A JSON-safe description of this host.

    Keys: ``cpu_model``, ``vendor`` (``vendor_id``), ``vcpus`` (logical CPUs),
    ``cores`` (physical cores), ``sockets``, ``smt`` (True: a vCPU is a
    hardware thread; None: cpuinfo does not say), ``memory_bytes``,
    ``kernel`` (``uname -r``), ``hostname``, and ``cpuinfo`` (the file read,
    or why it could not be). ``cpuinfo`` defaults to ``$RAYJOULE_CPUINFO`` or
    ``/proc/cpuinfo``; fields it cannot give are None, except ``vcpus``,
    which falls back to :func:`os.cpu_count`.

    >>> sorted(describe_host())                      # doctest: +NORMALIZE_WHITESPACE
    ['cores', 'cpu_model', 'cpuinfo', 'hostname', 'kernel', 'memory_bytes', 'smt', 'sockets',
     'vcpus', 'vendor']
    """
    try:
        info = read_cpuinfo(cpuinfo)
    except OSError as exc:
        info, source = None, f"unreadable: {exc}"
    else:
        source = info.source
    logical = info.logical if info is not None and info.logical else None
    return {
        "cpu_model": info.model if info else None,
        "vendor": info.vendor if info else None,
        "vcpus": logical or os.cpu_count(),
        "cores": info.cores if info else None,
        "sockets": info.sockets if info else None,
        "smt": info.smt if info else None,
        "memory_bytes": int(psutil.virtual_memory().total),
        "kernel": platform.release(),
        "hostname": socket.gethostname(),
        "cpuinfo": source,
    }
