"""The typed records the results store hands out and takes in: a stored run as readers get
it (:class:`RunRecord`, JSON columns parsed) and a run measured elsewhere to import
(:class:`ImportedRun`).

Why apart from :mod:`.store`: the store is SQLite and its transactions; these are the
records every reader (the models, the reports, the export) builds on, without SQL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rayjoule.core.errors import ConfigError


@dataclass(frozen=True)
class RunRecord:
    """One row of the ``runs`` table with its JSON columns parsed (what readers get)."""

    run_id: str
    parent_id: str | None
    created: float
    workload: str
    framework: str
    status: str
    error: str | None
    wall_s: float | None
    total_j: float | None
    static_j: float | None
    dynamic_j: float | None
    overhead_j: float | None
    complete: bool | None
    meter: str | None
    kind: str | None
    study: str | None
    trial: int | None
    config: dict[str, Any]
    result: dict[str, Any] | None

    @classmethod
    def of_row(cls, row: Mapping[str, Any], store: str) -> RunRecord:
        plain = {k: row.get(k) for k in _RECORD_COLUMNS}
        complete = plain.pop("complete")
        return cls(**plain, complete=None if complete is None else bool(complete),
                   config=_parsed(row.get("config_json"), store, row["run_id"], "config")
                   or {},
                   result=_parsed(row.get("result_json"), store, row["run_id"], "result"))


_RECORD_COLUMNS = ("run_id", "parent_id", "created", "workload", "framework", "status",
                   "error", "wall_s", "total_j", "static_j", "dynamic_j", "overhead_j",
                   "complete", "meter", "kind", "study", "trial")


def _parsed(text: str | None, store: str, run_id: str, what: str) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{store}: run {run_id}'s stored {what} is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{store}: run {run_id}'s stored {what} is not a JSON object")
    return value


@dataclass(frozen=True)
class ImportedRun:
    """A finished run measured elsewhere (e.g. a flexecutor profile): time only, no energy."""

    run_id: str
    workload: str
    framework: str
    wall_s: float
    config: dict[str, Any]
    result: dict[str, Any]
