"""Which host (or machine) runs a job for the fewest joules, over the runs of many stores.

Only ``ok`` runs whose every host was metered to the end are ranked (the rest are counted
in ``skipped``); measured and modelled figures are ranked in two lists, each from 1: a
modelled figure is an estimate and is never ranked against measurements.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rayjoule.core.errors import ConfigError
from rayjoule.runs.reports.across_stores import History, StoredRun, size_key

KINDS = ("measured", "modelled")
GROUPINGS = ("host", "machine")
MODELLED_NOTE = ("modelled figures are estimates from a power model, ranked separately: "
                 "not comparable with measured ones")


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
