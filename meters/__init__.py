"""Energy meters: RAPL (powercap), ``perf stat`` power events, a utilisation model, NVML.

A meter reports cumulative joules per domain since it was created; callers
take differences of two readings for their windows::

    import meters

    found = meters.detect()            # probes only; never raises
    print(found.chosen, found.skipped) # e.g. ['tdp'] {'rapl': 'no powercap tree ...'}
    with found.create_composite() as m:
        r0 = m.read(); ...; r1 = m.read()
        print(r1.total - r0.total, "J", r1.kind, r1.source)

This package imports only the standard library, psutil and numpy
(``nvidia-ml-py`` lazily, inside :class:`NvmlMeter`).
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
from meters._composite import CompositeMeter
from meters._cpu_table import CpuPowerRow, load_cpu_table, match_cpu, normalise_cpu_name
from meters._detect import (
    CPU_ORDER,
    ENTRY_POINT_GROUP,
    Detection,
    MeterInfo,
    detect,
    get_meter,
    meter_classes,
)
from meters._nvml import NvmlMeter
from meters._perf import PerfMeter, PerfSample, parse_perf_stat, parse_perf_stat_line
from meters._rapl import (
    POWERCAP_ROOT_ENV,
    RAPL_ACCESS_HELP,
    RaplMeter,
    counter_delta,
    discover_zones,
)
from meters._sampler import Sampler, SamplerFailed
from meters._tdp import TdpMeter, TdpModel, resolve_model

__all__ = [
    "CPU_ORDER",
    "ENTRY_POINT_GROUP",
    "KINDS",
    "MEASURED",
    "MODELLED",
    "POWERCAP_ROOT_ENV",
    "RAPL_ACCESS_HELP",
    "CompositeMeter",
    "CpuPowerRow",
    "Detection",
    "Meter",
    "MeterError",
    "MeterInfo",
    "MeterUnavailable",
    "NvmlMeter",
    "PerfMeter",
    "PerfSample",
    "Probe",
    "RaplMeter",
    "Reading",
    "Sampler",
    "SamplerFailed",
    "TdpMeter",
    "TdpModel",
    "counter_delta",
    "detect",
    "discover_zones",
    "get_meter",
    "load_cpu_table",
    "match_cpu",
    "meter_classes",
    "normalise_cpu_name",
    "parse_perf_stat",
    "parse_perf_stat_line",
    "resolve_model",
]
