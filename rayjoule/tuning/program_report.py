"""What a program's tune reports: trials pooled by setting, finalists, best, fastest, saving.

Why apart from :mod:`.program_tuner`: running trials (Optuna, the program's calls) and
reading them back into the ``--json`` figures are two jobs; this one is pure bookkeeping
over finished Optuna trials and the side-by-side re-run (:mod:`.program_rerun`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rayjoule.tuning.program_rerun import SideBySide, settings_key

if TYPE_CHECKING:
    from rayjoule.tuning.program_tuner import ProgramTune


@dataclass
class ProgramTuneReport:
    """What a program's tune found; the attributes are the ``--json`` keys."""

    program: str
    space: dict[str, dict[str, Any]]
    baseline: dict[str, Any] | None
    best: dict[str, Any] | None
    fastest: dict[str, Any] | None
    saved_j: dict[str, Any] | None
    saved_pct: dict[str, Any] | None
    trials: list[dict[str, Any]]
    meter: dict[str, str] | None
    study_name: str = ""
    storage: str = ""
    driver: str = "inline"
    max_seconds: float | None = None
    #: tuner time per trial outside the program's own wall time, this session's trials
    tuner_overhead_s: dict[str, float] | None = None
    #: whether the defaults and the best ran different stages (Ray Data fuses operators
    #: differently for different knobs)
    stages_differ: bool = False
    #: joules the fastest trial's setting costs above the best, the seconds the best takes
    #: above it, and their ``source`` ("side-by-side re-run" or "trials")
    tradeoff: dict[str, Any] | None = None
    interrupted: bool = False
    #: the settings re-run against the defaults, with their trial and re-run figures
    finalists: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "program": self.program, "space": self.space, "baseline": self.baseline,
            "best": self.best, "fastest": self.fastest, "saved_j": self.saved_j,
            "saved_pct": self.saved_pct, "trials": self.trials, "meter": self.meter,
            "study_name": self.study_name, "storage": self.storage, "driver": self.driver,
            "max_seconds": self.max_seconds, "tuner_overhead_s": self.tuner_overhead_s,
            "stages_differ": self.stages_differ, "tradeoff": self.tradeoff,
            "interrupted": self.interrupted, "finalists": self.finalists,
            "notes": self.notes,
        }


def trial_row(ft: Any) -> dict[str, Any]:
    """A finished trial as the report's ``trials`` entry."""
    ua = ft.user_attrs
    return {"number": ft.number, "settings": dict(ua.get("settings", ft.params)),
            "total_j": ua.get("total_j"), "wall_s": ua.get("wall_s"),
            "state": ft.state.name,
            "feasible": all(v <= 0 for v in (ft.constraints or {}).values()),
            "baseline": bool(ua.get("baseline")), "error": ua.get("error"),
            "run_id": ua.get("run_id")}


def _figures(group: list[Any]) -> dict[str, Any]:
    """One setting's trial figures (completed trials): the medians over the trials that
    drew it; stages and ``trial`` of its cheapest one."""
    ua = [ft.user_attrs for ft in group]
    cheapest = min(group, key=lambda ft: ft.user_attrs["total_j"])
    return {"settings": dict(ua[0].get("settings", group[0].params)),
            "total_j": statistics.median(u["total_j"] for u in ua),
            "wall_s": statistics.median(u["wall_s"] for u in ua),
            "stages": dict(cheapest.user_attrs.get("stages") or {}),
            "trial": cheapest.number, "trials": [ft.number for ft in group],
            "run_ids": [u.get("run_id") for u in ua]}


def by_setting(trials: list[Any]) -> list[list[Any]]:
    """Trials grouped by the setting they drew, cheapest group (median joules) first."""
    groups: dict[str, list[Any]] = {}
    for ft in trials:
        groups.setdefault(settings_key(ft.user_attrs.get("settings", ft.params)),
                          []).append(ft)
    return sorted(groups.values(),
                  key=lambda g: statistics.median(ft.user_attrs["total_j"] for ft in g))


def build_report(trials: list[Any], base: Any, tune: ProgramTune,
                 session: list[int]) -> ProgramTuneReport:
    """Baseline (``base``: the defaults' trial), finalists and best (least energy, feasible;
    trials of one setting pooled), fastest and every trial of the study."""
    rows = [trial_row(ft) for ft in trials]
    done = [(ft, r) for ft, r in zip(trials, rows, strict=True)
            if r["state"] == "COMPLETE" and r["total_j"] is not None]
    ranked = by_setting([ft for ft, r in done if r["feasible"]])
    fastest = min((ft for ft, _ in done), key=lambda ft: ft.user_attrs["wall_s"]) \
        if done else None
    measured = ranked[0][0] if ranked else fastest
    ua = measured.user_attrs if measured is not None else {}
    overhead = [ft.user_attrs["overhead_s"] for ft in trials
                if ft.number in session and "overhead_s" in ft.user_attrs]
    report = ProgramTuneReport(
        program=tune.program.spec or tune.program.name, space=tune.space.to_dict(),
        baseline=_figures([base]) if base is not None and base.state.name == "COMPLETE"
        else None,
        best=_figures(ranked[0]) if ranked else None,
        fastest=_figures([fastest]) if fastest else None,
        saved_j=None, saved_pct=None, trials=rows,
        meter={"name": ua["meter"], "kind": ua["kind"]} if ua.get("meter") else None,
        study_name=tune.study_name, storage=tune.storage, driver=tune.driver,
        max_seconds=tune.max_seconds,
        tuner_overhead_s={"median": statistics.median(overhead), "max": max(overhead)}
        if overhead else None,
        finalists=[_figures(g) for g in ranked[:tune.finalists]])
    report.tradeoff = _tradeoff(report.fastest, report.best)
    if report.best is None:
        report.notes.append("no completed trial met the time bound" if tune.max_seconds
                            else "no trial completed")
    return report


def _tradeoff(fastest: dict[str, Any] | None, best: dict[str, Any] | None,
              source: str = "trials") -> dict[str, Any] | None:
    """The fastest's extra joules and the best's extra seconds, from ``source``'s figures."""
    if best is None or fastest is None:
        return None
    return {"fastest_extra_j": fastest["total_j"] - best["total_j"],
            "best_extra_s": best["wall_s"] - fastest["wall_s"], "source": source}


def apply_rerun(report: ProgramTuneReport, rerun: SideBySide) -> None:
    """The best is the finalist cheapest in the re-run; its figures and the defaults' are
    the re-run's (the trials' stay in ``trials`` and ``finalists``)."""
    assert report.baseline is not None and report.best is not None
    chosen = next(f for f in report.finalists
                  if settings_key(f["settings"]) == settings_key(rerun.best["settings"]))
    for finalist, again in zip(report.finalists, rerun.finalists, strict=True):
        finalist["rerun_j"] = again["rerun_j"]
        finalist["rerun_median_j"] = again["total_j"]
    report.best = {**chosen, **rerun.best}
    report.baseline.update(rerun.baseline)
    report.saved_j, report.saved_pct = rerun.saved_j, rerun.saved_pct
    # where the fastest setting ran in the re-run too, compare like with like there, not
    # one trial against the best setting's trials
    rerun_of = {settings_key(f["settings"]): f for f in (rerun.baseline, *rerun.finalists)}
    fastest_again = None if report.fastest is None else \
        rerun_of.get(settings_key(report.fastest["settings"]))
    report.tradeoff = _tradeoff(fastest_again, rerun.best, "side-by-side re-run") \
        if fastest_again is not None else _tradeoff(report.fastest, chosen)
    report.stages_differ = set(rerun.baseline["stages"]) != set(rerun.best["stages"])
    if report.stages_differ:
        report.notes.append("the defaults and the best ran different stages (Ray task "
                            "names); per-stage joules are as measured, not matched")
