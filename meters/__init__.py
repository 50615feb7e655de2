"""Energy meters: RAPL (powercap), ``perf stat`` power events, a utilisation model, NVML.

A meter reports cumulative joules per domain since it was created; callers
take differences of two readings for their windows::

    import meters

    found = meters.detect()            # probes only; never raises
    print(found.chosen, found.skipped) # e.g. ['tdp'] {'rapl': 'no powercap tree ...'}
    with found.create_composite() as m:
        r0 = m.read(); ...; r1 = m.read()
        print(r1.total - r0.total, "J", r1.kind, r1.source)

Every meter says what its figures rest on (``meter.basis``, JSON-safe), and
:func:`describe_host` says what the machine was; both are stored with every run.
Inside a remote function, :class:`CallMeter` meters the call itself.

This package imports only the standard library, psutil and numpy
(``nvidia-ml-py`` lazily, inside :class:`NvmlMeter`). The conformance suite
for meters is :mod:`meters.testing` (it imports pytest, so only tests import it).
"""

from meters._base import (
    KINDS,
    MEASURED,
    MODELLED,
    Meter,
    MeterError,
    MeterUnavailable,
    Probe,
    Reading,
)
from meters._callmeter import MEMORY_W_PER_GB, CallMeter, process_cpu_seconds
from meters._composite import CompositeMeter
from meters._cpu_names import cpu_key
from meters._cpu_table import (
    MATCH_RULE,
    CpuMatch,
    CpuPowerRow,
    explain_match,
    load_cpu_table,
    match_cpu,
    normalise_cpu_name,
)
from meters._cpuinfo import CPUINFO_ENV, CpuInfo, parse_cpuinfo, read_cpuinfo
from meters._detect import (
    CPU_ORDER,
    ENTRY_POINT_GROUP,
    Detection,
    MeterInfo,
    detect,
    get_meter,
    meter_classes,
)
from meters._dies import DIE_COUNTERS, DieRule
from meters._host import describe_host
from meters._nvml import NvmlMeter
from meters._perf import PerfMeter, PerfSample, parse_perf_stat, parse_perf_stat_line
from meters._powercap import (
    POWERCAP_ROOT_ENV,
    PowercapScan,
    RaplZone,
    discover_zones,
    scan_powercap,
)
from meters._rapl import RAPL_ACCESS_HELP, RaplMeter, counter_delta
from meters._sampler import Sampler, SamplerFailed
from meters._tdp import TdpMeter
from meters._tdp_model import CPU_THREADS_ENV, TDP_WATTS_ENV, TdpModel, resolve_model

__all__ = [
    "CPUINFO_ENV",
    "CPU_ORDER",
    "CPU_THREADS_ENV",
    "DIE_COUNTERS",
    "ENTRY_POINT_GROUP",
    "KINDS",
    "MEASURED",
    "MEMORY_W_PER_GB",
    "MODELLED",
    "POWERCAP_ROOT_ENV",
    "RAPL_ACCESS_HELP",
    "TDP_WATTS_ENV",
    "CallMeter",
    "CompositeMeter",
    "CpuInfo",
    "CpuMatch",
    "CpuPowerRow",
    "MATCH_RULE",
    "Detection",
    "DieRule",
    "Meter",
    "MeterError",
    "MeterInfo",
    "MeterUnavailable",
    "NvmlMeter",
    "PerfMeter",
    "PerfSample",
    "PowercapScan",
    "Probe",
    "RaplMeter",
    "RaplZone",
    "Reading",
    "Sampler",
    "SamplerFailed",
    "TdpMeter",
    "TdpModel",
    "counter_delta",
    "describe_host",
    "detect",
    "discover_zones",
    "get_meter",
    "cpu_key",
    "explain_match",
    "load_cpu_table",
    "match_cpu",
    "meter_classes",
    "normalise_cpu_name",
    "parse_cpuinfo",
    "parse_perf_stat",
    "parse_perf_stat_line",
    "process_cpu_seconds",
    "read_cpuinfo",
    "resolve_model",
    "scan_powercap",
]
