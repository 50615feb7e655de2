"""A new run against its history: the same job's earlier runs, narrowest baseline first.

Only comparable runs are compared: the same kind, and for modelled figures the same model
basis; when none are, the others are used and the baseline says so.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rayjoule.core.errors import ConfigError
from rayjoule.runs.reports.across_stores import History, StoredRun


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
