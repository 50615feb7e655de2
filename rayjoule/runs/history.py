"""History across runs and machines: which host runs a job for the fewest joules.

Why: a store per machine is how runs are gathered (a laptop, a cloud VM, a
cluster head each keep their own ``rayjoule.sqlite``), and the question people
ask of them together is "where, and with which settings, does this job cost the
least?" — and, after a new run, "is it better or worse than before?". This
module answers both from one or more stores, read-only, and returns records;
the command (:mod:`rayjoule.cli.history`) renders them.

Rules that keep the answers honest:

* Only ``ok`` runs whose every host was metered to the end (``complete``) are
  ranked: a failed run has no figures, and a host lost mid-run makes a run look
  cheaper than it was. The ones left out are counted, never silently dropped.
* A run with repeats is stored twice over: each repeat, and a combined row of
  medians. The repeats are the observations; combined rows are not counted again.
* **Measured and modelled figures are ranked separately** (two lists, each
  ranked from 1): a modelled figure is an estimate from a power model, and
  putting it in one ranking with counter readings would present it as measured.
* The stores are opened with SQLite's read-only URI mode and never written.
"""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rayjoule.core.errors import ConfigError
from rayjoule.runs.store import SCHEMA_VERSION

KINDS = ("measured", "modelled")
GROUPINGS = ("host", "machine")
#: what a run's settings are (from its config): the knobs rayjoule tunes
SETTINGS = ("framework", "mode", "tasks", "concurrency", "num_cpus")
MODELLED_NOTE = ("modelled figures are estimates from a power model, ranked separately: "
                 "not comparable with measured ones")


# -- reading stores ------------------------------------------------------------------
def open_read_only(path: str | Path) -> sqlite3.Connection:
    """Open a rayjoule store for reading only; refuse anything else with a ConfigError.

    Without a ``-wal`` file beside it the store is wholly in its main file, and it is
    opened ``immutable`` so SQLite creates no ``-wal``/``-shm`` files next to it either;
    with one (a writer is running, or crashed) it is opened ``mode=ro`` so the WAL's
    committed runs are read too.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise ConfigError(f"results store not found: {path}")
    if not p.is_file():
        raise ConfigError(f"results store path is not a file: {path}")
    wal = p.with_name(p.name + "-wal")
    uri = f"file:{quote(str(p.resolve()))}?mode=ro" + ("" if wal.exists() else "&immutable=1")
    try:
        db = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise ConfigError(f"{path} cannot be opened as a results store: {exc}") from None
    db.row_factory = sqlite3.Row
    try:
        _recognise(db, str(path))
    except sqlite3.DatabaseError as exc:
        db.close()
        raise ConfigError(f"{path} is not a usable rayjoule results store: {exc}") from None
    except ConfigError:
        db.close()
        raise
    return db


def _recognise(db: sqlite3.Connection, path: str) -> None:
    """The same recognition as :class:`~rayjoule.runs.store.Store`, without its writes."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "meta" not in tables or "runs" not in tables:
        what = f"tables: {', '.join(sorted(tables)[:5])}" if tables else "no tables"
        raise ConfigError(f"{path} is not a rayjoule results store ({what}); give another --db")
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    version = int(row[0]) if row and str(row[0]).isdigit() else 0
    if not 1 <= version <= SCHEMA_VERSION:
        raise ConfigError(f"{path} has rayjoule store schema version {row and row[0]}, "
                          f"this rayjoule reads 1 to {SCHEMA_VERSION}; upgrade rayjoule")


@dataclass(frozen=True)
class HostInfo:
    """One physical host of a run: its key, what machine it was, and its meter.

    Older runs (before hosts carried ``info``) have None for the description.
    """

    host: str
    hostname: str | None
    cpu_model: str | None
    vcpus: int | None
    meter: str
    kind: str
    #: what a modelled figure rests on (``tdp override 100 W``); None when measured
    model: str | None = None

    def machine_key(self) -> tuple[Any, ...]:
        """The machine regardless of reboots (a host key changes with the boot id)."""
        return (self.hostname or self.host, self.cpu_model, self.vcpus)

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "hostname": self.hostname, "cpu_model": self.cpu_model,
                "vcpus": self.vcpus, "meter": self.meter, "kind": self.kind,
                "model": self.model}


@dataclass(frozen=True)
class StoredRun:
    """One row of a store's ``runs`` table, with what history needs parsed out of it."""

    run_id: str
    store: str
    created: float
    workload: str
    status: str
    size: Any
    params: dict[str, Any]
    settings: dict[str, Any]
    total_j: float | None
    wall_s: float | None
    meter: str | None
    kind: str | None
    complete: bool
    hosts: tuple[HostInfo, ...]
    parent_id: str | None = None
    combined: bool = False  # a repeats row: medians of its children, which are stored too

    @property
    def size_key(self) -> Any:
        return size_key(self.size)

    @property
    def job_key(self) -> tuple[str, Any, str]:
        """Workload, size and params: what makes two runs the same job."""
        return (self.workload, self.size_key, json.dumps(self.params, sort_keys=True))

    @property
    def settings_key(self) -> str:
        return json.dumps(self.settings, sort_keys=True, default=str)

    @property
    def host_keys(self) -> tuple[str, ...]:
        return tuple(sorted({h.host for h in self.hosts}))

    @property
    def models(self) -> tuple[str, ...]:
        """The model bases its modelled figures rest on (empty when measured)."""
        return tuple(sorted({h.model for h in self.hosts if h.model}))

    @property
    def rankable(self) -> bool:
        return (self.status == "ok" and self.complete and not self.combined
                and self.total_j is not None and self.wall_s is not None)

    def placement(self, by: str) -> tuple[Any, ...]:
        """Where it ran: its host keys (``by="host"``) or machine descriptions (``"machine"``),
        with each host's model basis: two bases give two estimates, not one host's best."""
        if by == "machine":
            return tuple(sorted({(h.machine_key(), h.model) for h in self.hosts}, key=str))
        return tuple(sorted({(h.host, h.model) for h in self.hosts}, key=str))

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "store": self.store, "created": self.created,
                "workload": self.workload, "size": self.size, "params": dict(self.params),
                "settings": dict(self.settings), "status": self.status,
                "total_j": self.total_j, "wall_s": self.wall_s, "meter": self.meter,
                "kind": self.kind, "complete": self.complete,
                "hosts": [h.to_dict() for h in self.hosts]}


@dataclass(frozen=True)
class History:
    """Every run of one or more stores (a run id seen in two stores is kept once)."""

    runs: list[StoredRun]
    stores: list[dict[str, Any]]
    duplicates: int = 0

    def paths(self) -> str:
        return ", ".join(s["path"] for s in self.stores)


def load(paths: Sequence[str | Path]) -> History:
    """Read every run of ``paths`` (in order; a later copy of a run id is a duplicate)."""
    seen: set[str] = set()
    runs, stores, duplicates = [], [], 0
    for path in paths:
        db = open_read_only(path)
        try:
            rows = [dict(r) for r in db.execute("SELECT * FROM runs ORDER BY created")]
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{path}: cannot read its runs: {exc}") from None
        finally:
            db.close()
        stores.append({"path": str(path), "runs": len(rows)})
        for row in rows:
            if row["run_id"] in seen:
                duplicates += 1
                continue
            seen.add(row["run_id"])
            runs.append(_parse(row, str(path)))
    return History(runs, stores, duplicates)


def _parse(row: dict[str, Any], store: str) -> StoredRun:
    config = _json(row.get("config_json"), store, row["run_id"]) or {}
    result = _json(row.get("result_json"), store, row["run_id"]) or {}
    settings = {k: config.get(k) for k in SETTINGS}
    settings["framework"] = row["framework"]
    complete = row.get("complete")
    return StoredRun(
        run_id=row["run_id"], store=store, created=row["created"], workload=row["workload"],
        status=row["status"], size=config.get("size"), params=dict(config.get("params") or {}),
        settings=settings, total_j=row["total_j"], wall_s=row["wall_s"], meter=row["meter"],
        kind=row["kind"], complete=bool(result.get("complete", True) if complete is None
                                        else complete),
        hosts=tuple(_host(h, row) for h in result.get("hosts", [])),
        parent_id=row.get("parent_id"), combined=bool(result.get("repeats")),
    )


def _json(text: str | None, store: str, run_id: str) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{store}: run {run_id} has unreadable JSON: {exc}") from None


def _host(h: dict[str, Any], row: dict[str, Any]) -> HostInfo:
    info = h.get("info") or {}
    machine = info.get("machine") or {}
    meter = h.get("meter") or {}
    kind = meter.get("kind") or row["kind"] or "?"
    return HostInfo(host=str(h.get("host", "?")), hostname=machine.get("hostname"),
                    cpu_model=machine.get("cpu_model"), vcpus=machine.get("vcpus"),
                    meter=meter.get("name") or row["meter"] or "?", kind=kind,
                    model=_model(info.get("meters") or {}) if kind != "measured" else None)


def _model(bases: dict[str, Any]) -> str | None:
    """A modelled meter's basis in a few words: ``tdp override 100 W``, ``tdp table <row>``.

    >>> _model({"tdp": {"kind": "modelled", "basis": "override", "tdp_w": 100.0}})
    'tdp override 100 W'
    """
    parts = []
    for name, b in sorted(bases.items()):
        if not isinstance(b, dict) or b.get("kind") != "modelled":
            continue
        words = [str(name), str(b.get("basis") or "model")]
        if b.get("row"):
            words.append(str(b["row"]))
        if b.get("tdp_w"):
            words.append(f"{b['tdp_w']:g} W")
        parts.append(" ".join(words))
    return "; ".join(parts) or None


def size_key(size: Any) -> Any:
    """A size as it compares: ``"1e6"``, ``1000000`` and ``1000000.0`` are one size.

    >>> size_key("1e6") == size_key(1_000_000)
    True
    >>> size_key("small")
    'small'
    """
    if size is None or isinstance(size, bool):
        return size
    try:
        value = float(size)
    except (TypeError, ValueError):
        return str(size)
    return value if math.isfinite(value) else str(size)


# -- ranking hosts -------------------------------------------------------------------
@dataclass(frozen=True)
class HostBest:
    """A host's (or machine's) best run of a job, and how many runs it has of it."""

    rank: int
    placement: tuple[Any, ...]
    kind: str
    runs: int
    best: StoredRun
    vs_best: float | None  # best total_j / the group leader's

    def to_dict(self) -> dict[str, Any]:
        b = self.best
        return {"rank": self.rank, "kind": self.kind, "meter": b.meter,
                "hosts": [h.to_dict() for h in b.hosts], "runs": self.runs,
                "total_j": b.total_j, "wall_s": b.wall_s, "vs_best": self.vs_best,
                "settings": dict(b.settings), "run_id": b.run_id, "store": b.store,
                "created": b.created}


@dataclass(frozen=True)
class JobRanking:
    """One job (workload, size, params): its hosts ranked by best joules, per kind."""

    workload: str
    size: Any
    params: dict[str, Any]
    runs: int
    skipped: dict[str, int]
    ranked: dict[str, list[HostBest]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        mixed = all(self.ranked.get(k) for k in KINDS)
        return {"workload": self.workload, "size": self.size, "params": dict(self.params),
                "runs": self.runs, "skipped": dict(self.skipped),
                **{k: [h.to_dict() for h in self.ranked.get(k, [])] for k in KINDS},
                "note": MODELLED_NOTE if mixed else None}


def rank_hosts(history: History, workload: str | None = None, size: Any = None,
               by: str = "host") -> list[JobRanking]:
    """Per job, each host's best run, ranked by total joules within measured and modelled.

    ``workload``/``size`` filter (size as :func:`size_key` compares them); without a
    size every size is its own job. Raises ConfigError when nothing matches, naming
    what the stores do hold.
    """
    if by not in GROUPINGS:
        raise ConfigError(f"group by one of {', '.join(GROUPINGS)}, not {by!r}")
    chosen = [r for r in history.runs
              if (workload is None or r.workload == workload)
              and (size is None or r.size_key == size_key(size))]
    _require_runs(history, chosen, workload, size)
    jobs: dict[tuple, list[StoredRun]] = defaultdict(list)
    for r in chosen:
        jobs[r.job_key].append(r)
    rankings = []
    for key in sorted(jobs, key=_job_order):
        runs = jobs[key]
        ok = [r for r in runs if r.rankable]
        skipped = {"not_ok": sum(r.status != "ok" for r in runs),
                   "incomplete": sum(r.status == "ok" and not r.complete for r in runs)}
        if not ok:
            continue
        ranked = {kind: _rank([r for r in ok if r.kind == kind], by) for kind in KINDS}
        other = [r for r in ok if r.kind not in KINDS]
        if other:  # an unknown kind is not presented as either
            ranked["unknown"] = _rank(other, by)
        rankings.append(JobRanking(runs[0].workload, runs[0].size, runs[0].params, len(ok),
                                   skipped, {k: v for k, v in ranked.items() if v}))
    if not rankings:
        where = f"{workload!r}" + (f" of size {size}" if size is not None else "")
        raise ConfigError(f"no ok, complete runs of {where} in {history.paths()} "
                          "(only failed, interrupted or incomplete ones)")
    return rankings


def _job_order(key: tuple[str, Any, str]) -> tuple[Any, ...]:
    """Workload, then sizes in numeric order (text sizes after numbers), then params."""
    workload, size, params = key
    return (workload, isinstance(size, str), size if isinstance(size, float) else 0.0,
            str(size), params)


def _require_runs(history: History, chosen: list[StoredRun], workload: str | None,
                  size: Any) -> None:
    """Say what the stores hold when the query matches nothing."""
    if chosen:
        return
    if not history.runs:
        raise ConfigError(f"no runs in {history.paths()}")
    names = sorted({r.workload for r in history.runs})
    if workload is not None and workload not in names:
        raise ConfigError(f"no runs of workload {workload!r} in {history.paths()}; "
                          f"workloads there: {', '.join(names)}")
    sizes = sorted({str(r.size) for r in history.runs if r.workload == workload})
    raise ConfigError(f"no runs of {workload!r} with size {size} in {history.paths()}; "
                      f"sizes there: {', '.join(sizes)}")


def _rank(runs: Iterable[StoredRun], by: str) -> list[HostBest]:
    groups: dict[tuple, list[StoredRun]] = defaultdict(list)
    for r in runs:
        groups[r.placement(by)].append(r)
    bests = sorted(((p, min(rs, key=_cost), len(rs)) for p, rs in groups.items()),
                   key=lambda t: _cost(t[1]))
    if not bests:
        return []
    leader = bests[0][1].total_j
    return [HostBest(i, p, best.kind or "?", n, best,
                     best.total_j / leader if leader else None)
            for i, (p, best, n) in enumerate(bests, start=1)]


def _cost(r: StoredRun) -> tuple[float, float, float]:
    return (r.total_j, r.wall_s, r.created)  # type: ignore[return-value]


# -- a new run against its history ------------------------------------------------------
@dataclass(frozen=True)
class Baseline:
    """Earlier runs a run is compared with: their spread and the run's ratio to the median.

    Only comparable runs are: the same kind, and for modelled figures the same model
    basis (a TDP override changes every estimate). When none are, the others are used
    and ``caveat`` says so; when some are left out, ``caveat`` says how many.
    """

    label: str
    runs: int
    left_out: int
    kind: str | None
    hosts: int
    total_j: dict[str, float] | None
    wall_s: dict[str, float] | None
    ratio_total_j: float | None
    ratio_wall_s: float | None
    caveat: str | None
    comparable: bool = True  # False: the pool is the non-comparable runs (caveat says why)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "runs": self.runs, "comparable": self.comparable,
                "left_out": self.left_out,
                "kind": self.kind, "hosts": self.hosts, "total_j": self.total_j,
                "wall_s": self.wall_s, "ratio_total_j": self.ratio_total_j,
                "ratio_wall_s": self.ratio_wall_s, "caveat": self.caveat}


@dataclass(frozen=True)
class RunComparison:
    """A run and its three baselines, narrowest first."""

    run: StoredRun
    same_host: Baseline
    same_settings: Baseline
    same_job: Baseline

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run.to_dict(), "same_host": self.same_host.to_dict(),
                "same_settings": self.same_settings.to_dict(),
                "same_job": self.same_job.to_dict()}


def compare_run(history: History, run_id: str) -> RunComparison:
    """``run_id`` against the same job's earlier ok runs: with the same settings on the same
    host(s), with the same settings anywhere, and with any settings anywhere.

    "Earlier" is by creation time; a combined repeats run is compared without its own
    repeats. Raises ConfigError for an unknown run or one without figures.
    """
    subject = next((r for r in history.runs if r.run_id == run_id), None)
    if subject is None:
        raise ConfigError(f"run {run_id!r} not found in {history.paths()}")
    if subject.status != "ok" or subject.total_j is None:
        raise ConfigError(f"run {run_id} is {subject.status}: it has no figures to compare")
    earlier = [r for r in history.runs
               if r.rankable and r.job_key == subject.job_key and r.created < subject.created
               and r.run_id != subject.run_id and r.parent_id != subject.run_id]
    same = [r for r in earlier if r.settings_key == subject.settings_key]
    here = [r for r in same if r.host_keys == subject.host_keys]
    return RunComparison(subject, _baseline("same settings, same host", subject, here),
                         _baseline("same settings, any host", subject, same),
                         _baseline("any settings, any host", subject, earlier))


def comparable(a: StoredRun, b: StoredRun) -> bool:
    """Same kind, and for modelled figures the same model basis on every host."""
    return a.kind == b.kind and (a.kind == "measured" or a.models == b.models)


def _baseline(label: str, subject: StoredRun, earlier: list[StoredRun]) -> Baseline:
    alike = [r for r in earlier if comparable(r, subject)]
    others = [r for r in earlier if not comparable(r, subject)]
    pool, caveat = alike, None
    if not alike and others:
        pool = others
        what = sorted({f"{r.kind} ({'; '.join(r.models) or r.meter})" for r in others})
        caveat = (f"no comparable earlier runs: compared with {', '.join(what)} ones, which "
                  f"are not comparable with this {subject.kind} run "
                  f"({'; '.join(subject.models) or subject.meter})")
    elif others:
        caveat = (f"{len(others)} earlier run(s) of another kind or model basis left out: "
                  "they are not comparable")
    if not pool:
        return Baseline(label, 0, 0, None, 0, None, None, None, None, caveat)
    joules = spread([r.total_j for r in pool])  # type: ignore[misc]
    seconds = spread([r.wall_s for r in pool])  # type: ignore[misc]
    return Baseline(label, len(pool), len(others) if pool is alike else 0, pool[0].kind,
                    len({r.host_keys for r in pool}), joules, seconds,
                    _ratio(subject.total_j, joules["median"]),
                    _ratio(subject.wall_s, seconds["median"]), caveat, pool is alike)


def spread(values: Sequence[float]) -> dict[str, float]:
    """min, quartiles, median and max (inclusive quartiles; one value is its own spread).

    >>> spread([1.0, 2.0, 3.0, 4.0, 5.0])
    {'min': 1.0, 'q1': 2.0, 'median': 3.0, 'q3': 4.0, 'max': 5.0}
    """
    if len(values) == 1:
        q1 = med = q3 = float(values[0])
    else:
        q1, med, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"min": float(min(values)), "q1": q1, "median": med, "q3": q3,
            "max": float(max(values))}


def _ratio(value: float | None, median: float) -> float | None:
    return None if value is None or not median else value / median
