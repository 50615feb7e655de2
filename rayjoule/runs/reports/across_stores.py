"""History across runs and machines: which host runs a job for the fewest joules.

Why: a store per machine is how runs are gathered (a laptop, a cloud VM, a
cluster head each keep their own ``rayjoule.sqlite``), and the question people
ask of them together is "where, and with which settings, does this job cost the
least?" — and, after a new run, "is it better or worse than before?". This
module reads one or more stores into typed runs; :mod:`.host_ranking` and
:mod:`.run_baseline` answer the two questions, and the command
(:mod:`rayjoule.cli.history`) renders their records.

Rules that keep the answers honest:

* Only ``ok`` runs whose every host was metered to the end (``complete``) are
  ranked: a failed run has no figures, and a host lost mid-run makes a run look
  cheaper than it was. The ones left out are counted, never silently dropped.
* A run with repeats is stored twice over: each repeat, and a combined row of
  medians. The repeats are the observations; combined rows are not counted again.
* **Measured and modelled figures are ranked separately** (two lists, each
  ranked from 1): a modelled figure is an estimate from a power model, and
  putting it in one ranking with counter readings would present it as measured.
* The stores are opened with :meth:`Store.open_read_only
  <rayjoule.runs.store.Store.open_read_only>` and read through its typed records: never
  written, never created.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rayjoule.runs.store import RunRecord, Store

#: what a run's settings are (from its config): the knobs rayjoule tunes
SETTINGS = ("framework", "mode", "tasks", "concurrency", "num_cpus")


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
        with Store.open_read_only(path) as store:
            records = store.records()
        stores.append({"path": str(path), "runs": len(records)})
        for record in records:
            if record.run_id in seen:
                duplicates += 1
                continue
            seen.add(record.run_id)
            runs.append(_parse(record, str(path)))
    return History(runs, stores, duplicates)


def _parse(row: RunRecord, store: str) -> StoredRun:
    config, result = row.config, row.result or {}
    settings = {k: config.get(k) for k in SETTINGS}
    settings["framework"] = row.framework
    return StoredRun(
        run_id=row.run_id, store=store, created=row.created, workload=row.workload,
        status=row.status, size=config.get("size"), params=dict(config.get("params") or {}),
        settings=settings, total_j=row.total_j, wall_s=row.wall_s, meter=row.meter,
        kind=row.kind, complete=bool(result.get("complete", True) if row.complete is None
                                     else row.complete),
        hosts=tuple(_host(h, row) for h in result.get("hosts", [])),
        parent_id=row.parent_id, combined=bool(result.get("repeats")),
    )


def _host(h: dict[str, Any], row: RunRecord) -> HostInfo:
    info = h.get("info") or {}
    machine = info.get("machine") or {}
    meter = h.get("meter") or {}
    kind = meter.get("kind") or row.kind or "?"
    return HostInfo(host=str(h.get("host", "?")), hostname=machine.get("hostname"),
                    cpu_model=machine.get("cpu_model"), vcpus=machine.get("vcpus"),
                    meter=meter.get("name") or row.meter or "?", kind=kind,
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
