"""Import (and write) flexecutor's profiling JSON, so its timings train rayjoule's models.

flexecutor (CLOUDLAB-URV/flexecutor, ``DAGExecutor.profile``) writes one JSON file per
stage: keys are the resource configuration as a Python tuple string ``"(cpu, memory,
workers)"``; each holds, per step, a list of repetitions, each a list with one value
per worker::

    {"(1, 1024, 4)": {"read": [[0.11, 0.12, 0.10, 0.13], ...],
                      "compute": [[...], ...], "write": [[...], ...],
                      "cold_start": [[...], ...]}}

Older layouts, each checked against files flexecutor committed (``tests/data/flexecutor``),
are read too: 30 May – 5 June 2024 named the last step ``cold_start_time``; 29–30 May 2024
kept one record per worker (``{"(1, 1024, 4)": [[{"read": .., "compute": .., "write": ..,
"cold_start_time": ..}, ...], ...]}``); the first prototype a list of ``{"config": [cpu,
memory, workers], "execution_results": <the records>}``. The one layout that cannot be read
(4 June 2024: each step one flat list, repetitions run together) is refused in one line.
Energy, where a file carries it, is one more step in the same shape, ``energy_j`` (each
worker's joules: what rayjoule's export writes, as the thesis's fork of flexecutor added
its energy keys). It may hold fewer repetitions than the time steps: flexecutor's
``profile()`` appends only its own steps when it profiles further into the same file, so the
first repetitions carry energy and the rest are time only. Without ``energy_j``, the energy
fork flexecutorGreen's ``energy`` (J per worker, null where no meter ran) is read with its
``energy_source`` (:func:`fork_meter`): summed over workers, or the largest worker's where
all read one whole-machine counter (rapl, perf), as its ``energy_agg`` does. Other steps
are not read — :func:`unread_steps` names them; the other energy fork's (``TDP``: worker
seconds × CPU share, ``RAPL``, ``perf_energy_cores``, ...) carry no meter rayjoule could
name, so its files import as time only.

flexecutor runs ``min(workers, the stage's max_concurrency)`` workers, so a repetition may
list fewer workers than its key (a one-worker reduce under ``(1, 2048, 2)``): ``tasks``
stays the key's (the setting asked for), the means run over the workers listed.

Mapping: cpu → ``num_cpus``, memory → ``memory_mb`` (0: unknown; memory is a model setting
where the file varies it), workers → ``tasks``. A repetition becomes one
:class:`~.profiles.Profile` whose ``wall_s`` — the stage's ``exec_s`` — is the mean over its
workers of read + compute + write, whose ``cold_start_s`` is their mean cold start, kept
apart as Jolteon does, and whose ``total_j`` is the sum of its workers' ``energy_j`` (None
without it: flexecutor itself measures no energy, so its own profiles are time-only). It
profiles one input, so ``size`` is one number (1.0 unless given).

**The sidecar.** rayjoule's export writes what its figures mean next to the file, in
``FILE.meta.json`` (flexecutor reads every top-level key of the profile as a tuple, so
nothing else may sit there): the meter's name and kind, the size, per key and
repetition the stage's overhead share (``overhead_j``: the joules of the run no task
carries), and the keys whose memory the export derived from the CPUs
(``memory_from_cpus``: rayjoule set none; they read back unset). :func:`read_sidecar`
reads it; with it, a repetition's ``total_j`` is its workers' ``energy_j`` plus its
overhead share — the stage's joules as first stored — under the sidecar's meter. Energy
without a sidecar is stored under :data:`UNKNOWN_METER` (kind ``unknown``): who measured
it, and whether it was measured or modelled, is not known, and rayjoule never calls such
joules measured.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rayjoule.core.errors import ConfigError
from rayjoule.modelling.profiles import Profile

STEPS = ("read", "compute", "write")
COLD_KEYS = ("cold_start", "cold_start_time")
ENERGY_STEP = "energy_j"
SOURCE = "flexecutor"
#: the meter of imported energy that came without its sidecar: neither measured nor modelled
UNKNOWN_METER = {"name": "unknown", "kind": "unknown"}
SIDECAR_SUFFIX = ".meta.json"
#: the kinds a sidecar's meter may have: the export writes its runs' kinds, "+"-joined where
#: they differ, and "none" where no run had a meter
SIDECAR_KINDS = frozenset({"measured", "modelled", "unknown", "none"})
#: the energy fork flexecutorGreen (JanToro26/flexecutorGreen): ``energy``, each worker's
#: joules (null where no meter ran), with ``energy_source`` naming each worker's meter
FORK_ENERGY, FORK_SOURCE = "energy", "energy_source"
#: its whole-machine counters, which every co-located worker reads: the stage's joules are
#: the largest worker's (its ``energy_agg.stage_energy``); other sources' are summed
SHARED_SOURCES = frozenset({"rapl", "perf"})
SOURCE_KINDS = {"rapl": "measured", "perf": "measured", "psutil_model": "modelled"}
#: joules below which an overhead share is float residue of a subtraction, i.e. zero
ROUNDING_J = 1e-9


@dataclass(frozen=True)
class Sidecar:
    """What rayjoule's export says its figures mean (``FILE.meta.json``)."""

    #: ``{"name", "kind"}`` of the meter behind ``energy_j``
    meter: dict[str, str]
    #: the input size the file profiles (None where the sidecar does not say)
    size: float | None
    #: ``"(cpu, memory, workers)"`` → per repetition, the stage's overhead share (J)
    overhead_j: dict[str, list[float]] = field(default_factory=dict)
    #: the keys whose memory the export derived from the CPUs (rayjoule set none)
    memory_from_cpus: frozenset[str] = frozenset()


def read_sidecar(meta: Any) -> Sidecar:
    """The parsed sidecar JSON; ConfigError (one line) when it is not one.

    >>> read_sidecar({"meter": {"name": "rapl", "kind": "measured"}, "size": 8,
    ...               "overhead_j": {"(1, 0, 2)": [0.5]}}).overhead_j
    {'(1, 0, 2)': [0.5]}
    """
    meter = meta.get("meter") if isinstance(meta, Mapping) else None
    if not (isinstance(meter, Mapping) and all(isinstance(meter.get(k), str) and meter[k]
                                               for k in ("name", "kind"))):
        raise ConfigError("flexecutor sidecar: expected an object with meter {name, kind}")
    if not set(meter["kind"].split("+")) <= SIDECAR_KINDS:
        raise ConfigError(f"flexecutor sidecar: meter kind must be measured or modelled (or "
                          f"unknown; '+'-joined where the exported runs differ), got "
                          f"{meter['kind']!r}")
    size = meta.get("size")
    if size is not None and not (_number(size) and size > 0):
        raise ConfigError(f"flexecutor sidecar: size must be a number > 0, got {size!r}")
    overhead = meta.get("overhead_j") or {}
    if not isinstance(overhead, Mapping) or not all(
            isinstance(v, list) and all(_number(x) and x >= -ROUNDING_J for x in v)
            for v in overhead.values()):
        raise ConfigError("flexecutor sidecar: overhead_j must map each key to a list of "
                          "joules >= 0, one per repetition")
    derived = meta.get("memory_from_cpus") or []
    if not (isinstance(derived, list) and all(isinstance(k, str) for k in derived)):
        raise ConfigError("flexecutor sidecar: memory_from_cpus must be a list of "
                          "'(cpu, memory, workers)' keys")
    return Sidecar({"name": str(meter["name"]), "kind": str(meter["kind"])},
                   None if size is None else float(size),
                   {str(k): [max(float(x), 0.0) for x in v] for k, v in overhead.items()},
                   frozenset(derived))


def parse_flexecutor(data: Any, workload: str, stage: str, size: float = 1.0,
                     overhead_j: Mapping[str, list[float]] | None = None,
                     memory_unset: Collection[str] = ()) -> list[Profile]:
    """Profiles from one stage's flexecutor profiling data (the parsed JSON object).

    ``overhead_j`` (a sidecar's: key → per repetition) is added to each repetition's summed
    ``energy_j``; a key or repetition it does not cover adds nothing. The keys in
    ``memory_unset`` (a sidecar's ``memory_from_cpus``) read with memory unset.

    Raises ConfigError, one line naming the key and field, on a malformed file.

    >>> data = {"(1, 1024, 2)": {"read": [[0.5, 0.5]], "compute": [[2.0, 3.0]],
    ...                           "write": [[0.5, 0.5]], "cold_start": [[1.0, 2.0]]}}
    >>> p, = parse_flexecutor(data, "wordcount", "map")
    >>> (p.tasks, p.num_cpus, p.memory_mb, p.wall_s, p.cold_start_s, p.total_j)
    (2, 1.0, 1024.0, 3.5, 1.5, None)
    """
    data = _keyed(data)
    if not isinstance(data, Mapping) or not data:
        raise ConfigError("flexecutor profile: expected a non-empty JSON object keyed by "
                          "'(cpu, memory, workers)'")
    unknown = sorted(set(overhead_j or {}) - set(data))
    if unknown:
        raise ConfigError(f"flexecutor sidecar: overhead_j names {unknown[0]!r}, which the "
                          "file does not have (a sidecar of another file?)")
    profiles = []
    for key, entry in data.items():
        cpu, memory, workers = _parse_key(key)
        reps = _repetitions(key, entry, workers)
        extra = (overhead_j or {}).get(key, [])
        if len(extra) > len(reps):
            raise ConfigError(f"flexecutor sidecar: overhead_j of {key} has {len(extra)} "
                              f"repetitions, the file {len(reps)}")
        for rep, repetition in enumerate(reps):
            records = repetition.workers
            try:
                wall = math.fsum(math.fsum(r[s] for s in STEPS) for r in records) / len(records)
                cold = math.fsum(r["cold"] for r in records) / len(records)
                energy = None
                if all("energy" in r for r in records):
                    joules = [r["energy"] for r in records]
                    stage_j = max(joules) if repetition.one_counter else math.fsum(joules)
                    energy = math.fsum([stage_j, extra[rep] if rep < len(extra) else 0.0]) \
                        or None
            except OverflowError:
                raise ConfigError(f"flexecutor profile {key}: repetition {rep} sums past the "
                                  "largest float (values near 1e308)") from None
            profiles.append(Profile(
                workload=workload, stage=stage, tasks=workers, num_cpus=cpu,
                memory_mb=None if key in memory_unset else memory or None, size=size,
                wall_s=wall, total_j=energy,
                cold_start_s=cold, source=SOURCE, run_id=f"{SOURCE}:{key}#{rep}",
            ))
    return profiles


def to_flexecutor_json(profiles: Iterable[Profile]) -> dict[str, dict[str, list[list[float]]]]:
    """Profiles written back in flexecutor's layout (energy is not part of it).

    Each profile becomes one repetition of its configuration with ``tasks`` identical
    workers whose read time is the profile's ``wall_s`` (compute and write 0), so
    :func:`parse_flexecutor` reads the same wall and cold-start times back. An unknown
    memory is written as 0, which reads back as unknown.
    """
    out: dict[str, dict[str, list[list[float]]]] = {}
    for p in profiles:
        memory = 0 if p.memory_mb is None else _compact(p.memory_mb)
        key = f"({_compact(p.num_cpus)}, {memory}, {p.tasks})"
        entry = out.setdefault(key, {"read": [], "compute": [], "write": [], "cold_start": []})
        entry["read"].append([p.wall_s] * p.tasks)
        entry["compute"].append([0.0] * p.tasks)
        entry["write"].append([0.0] * p.tasks)
        entry["cold_start"].append([p.cold_start_s or 0.0] * p.tasks)
    return out


def unread_steps(data: Any) -> list[str]:
    """The steps of a parsed file that :func:`parse_flexecutor` does not read (sorted).

    >>> unread_steps({"(1, 2048, 2)": {"read": [], "TDP": [], "energy_j": [], "RAPL": []}})
    ['RAPL', 'TDP']
    >>> unread_steps({"(1, 512, 1)": [[{"read": 1.0, "total": 3.5}]]})
    ['total']
    """
    keyed = _keyed(data)
    names: set[str] = set()
    for entry in keyed.values() if isinstance(keyed, Mapping) else []:
        if isinstance(entry, Mapping):  # steps of repetitions
            names.update(map(str, entry))
        elif isinstance(entry, list):  # repetitions of per-worker records
            names.update(str(k) for rep in entry if isinstance(rep, list)
                         for rec in rep if isinstance(rec, Mapping) for k in rec)
    return sorted(names - {*STEPS, *COLD_KEYS, ENERGY_STEP, FORK_ENERGY, FORK_SOURCE})


def _keyed(data: Any) -> Any:
    """flexecutor's first prototype (May 2024) kept a list of ``{"config": [cpu, memory,
    workers], "execution_results": [repetition, ...]}``, a configuration once per profiling
    call: the same repetitions keyed as every later version keys them. Anything else is
    returned as it is."""
    if not (isinstance(data, list) and data and all(
            isinstance(e, Mapping) and "config" in e and "execution_results" in e
            for e in data)):
        return data
    keyed: dict[str, list[Any]] = {}
    for i, record in enumerate(data):
        config, reps = record["config"], record["execution_results"]
        if not isinstance(config, list) or not isinstance(reps, list):
            raise ConfigError(f"flexecutor profile: record {i} needs config [cpu, memory, "
                              "workers] and a list of execution_results")
        keyed.setdefault(str(tuple(config)), []).extend(reps)
    return keyed


def _parse_key(key: Any) -> tuple[float, float, int]:
    try:
        value = ast.literal_eval(key) if isinstance(key, str) else None
    except (ValueError, SyntaxError):
        value = None
    if not (isinstance(value, tuple) and len(value) == 3 and all(_number(v) for v in value)):
        raise ConfigError(f"flexecutor profile: key {key!r} is not '(cpu, memory, workers)'")
    cpu, memory, workers = value
    if cpu <= 0 or memory < 0 or workers < 1 or workers != int(workers):
        raise ConfigError(f"flexecutor profile: key {key!r} needs cpu > 0, memory >= 0 and "
                          "a whole number of workers >= 1")
    return float(cpu), float(memory), int(workers)


@dataclass(frozen=True)
class _Repetition:
    """One repetition of a configuration as read: per worker, its {read, compute, write,
    cold[, energy]} seconds and joules."""

    workers: list[dict[str, float]]
    #: every worker's ``energy`` read one whole-machine counter (flexecutorGreen's rapl or
    #: perf): the stage's joules are the largest worker's, not their sum
    one_counter: bool = False


def _repetitions(key: str, entry: Any, workers: int) -> list[_Repetition]:
    """The repetitions of one configuration, in either per-step or per-worker layout."""
    if isinstance(entry, Mapping):
        reps = _from_columns(key, entry)
    elif isinstance(entry, list):
        reps = [_Repetition(_from_records(key, i, rep)) for i, rep in enumerate(entry)]
    else:
        raise ConfigError(f"flexecutor profile {key}: expected an object of steps or a list "
                          f"of repetitions, got {type(entry).__name__}")
    if not reps:
        raise ConfigError(f"flexecutor profile {key}: no repetitions")
    for i, rep in enumerate(reps):
        if not rep.workers:
            raise ConfigError(f"flexecutor profile {key}: repetition {i} has no workers")
    return reps


def _from_columns(key: str, entry: Mapping[str, Any]) -> list[_Repetition]:
    cold_key = next((k for k in COLD_KEYS if k in entry), None)
    missing = [s for s in STEPS if s not in entry] + ([] if cold_key else ["cold_start"])
    if missing:
        raise ConfigError(f"flexecutor profile {key}: missing field(s) {', '.join(missing)}")
    columns = {s: entry[s] for s in STEPS} | {"cold": entry[cold_key]}
    lengths = {name: len(col) if isinstance(col, list) else -1 for name, col in columns.items()}
    if len(set(lengths.values())) != 1 or -1 in lengths.values():
        raise ConfigError(f"flexecutor profile {key}: steps must be lists with as many "
                          f"repetitions each, got {lengths}")
    if any(_number(v) for v in columns["read"]):
        raise ConfigError(f"flexecutor profile {key}: each step is one flat list of numbers "
                          "(flexecutor's layout of 4 June 2024), which does not say which "
                          "values make one repetition; not read")
    step = ENERGY_STEP if ENERGY_STEP in entry or FORK_ENERGY not in entry else FORK_ENERGY
    energy = entry.get(step)
    if energy is not None and not (isinstance(energy, list) and len(energy) <= lengths["read"]):
        raise ConfigError(f"flexecutor profile {key}: {step} must be a list of at most "
                          f"{lengths['read']} repetitions (the time steps' first ones), got "
                          f"{len(energy) if isinstance(energy, list) else type(energy).__name__}")
    reps = []
    for i in range(lengths["read"]):
        per_step = {name: col[i] for name, col in columns.items()}
        joules = energy[i] if energy is not None and i < len(energy) else None
        # flexecutorGreen writes null where no meter ran: that repetition is time only
        if joules is not None and not (isinstance(joules, list) and None in joules):
            per_step["energy"] = joules
        sizes = {len(v) if isinstance(v, list) else -1 for v in per_step.values()}
        if len(sizes) != 1 or -1 in sizes:
            raise ConfigError(f"flexecutor profile {key}: repetition {i} needs one list of "
                              "per-worker times per step, all as long")
        one_counter = "energy" in per_step and step == FORK_ENERGY and \
            _sources(entry, i) <= SHARED_SOURCES and bool(_sources(entry, i))
        reps.append(_Repetition([{name: _seconds(key, name, v[w]) for name, v in per_step.items()}
                                 for w in range(sizes.pop())], one_counter))
    return reps


def _sources(entry: Mapping[str, Any], rep: int) -> set[str]:
    """The meters flexecutorGreen's ``energy_source`` names for one repetition's workers."""
    sources = entry.get(FORK_SOURCE)
    names = sources[rep] if isinstance(sources, list) and rep < len(sources) else []
    return {str(n).lower() for n in names} if isinstance(names, list) else set()


def fork_meter(data: Any) -> dict[str, str] | None:
    """The meter behind flexecutorGreen's ``energy`` (its ``energy_source``), where the file
    carries that energy and not rayjoule's ``energy_j``; None otherwise. Raises ConfigError
    (one line) when its repetitions name several meters.

    >>> fork_meter({"(1, 2048, 2)": {"energy": [[3.0, 4.0]],
    ...                              "energy_source": [["psutil_model", "psutil_model"]]}})
    {'name': 'psutil_model', 'kind': 'modelled'}
    """
    keyed = _keyed(data)
    names: set[str] = set()
    for entry in keyed.values() if isinstance(keyed, Mapping) else []:
        if not isinstance(entry, Mapping) or ENERGY_STEP in entry or \
                not isinstance(entry.get(FORK_ENERGY), list):
            continue
        for i, joules in enumerate(entry[FORK_ENERGY]):
            if isinstance(joules, list) and joules and None not in joules:
                names |= _sources(entry, i) or {"unknown"}
    if len(names) > 1:
        raise ConfigError(f"flexecutor profile: energy from several meters "
                          f"({', '.join(sorted(names))}) in one file; rayjoule stores one "
                          "meter per import")
    if not names:
        return None
    (name,) = names
    return {"name": name, "kind": SOURCE_KINDS.get(name, "unknown")}


def _from_records(key: str, i: int, rep: Any) -> list[dict[str, float]]:
    if not isinstance(rep, list):
        raise ConfigError(f"flexecutor profile {key}: repetition {i} is not a list of workers")
    records = []
    for rec in rep:
        cold_key = next((k for k in COLD_KEYS if isinstance(rec, Mapping) and k in rec), None)
        if not isinstance(rec, Mapping) or cold_key is None or any(s not in rec for s in STEPS):
            raise ConfigError(f"flexecutor profile {key}: repetition {i} needs read, compute, "
                              "write and cold_start_time per worker")
        records.append({s: _seconds(key, s, rec[s]) for s in STEPS}
                       | {"cold": _seconds(key, cold_key, rec[cold_key])})
    return records


def _seconds(key: str, name: str, value: Any) -> float:
    if not _number(value) or value < 0:
        what = f"{ENERGY_STEP} must be joules" if name == "energy" else f"{name} must be seconds"
        raise ConfigError(f"flexecutor profile {key}: {what} >= 0, got {value!r}")
    return float(value)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _compact(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)
