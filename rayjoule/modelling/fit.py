"""Fit one stage's time and energy models from its profiles: which forms, by held-out error.

Profile → train → predict are separate steps (flexecutor's split): :func:`fit_stage`
turns profiles into a :class:`~.stage_model.StageModel`, which samples itself at any
setting. Every fit reports its leave-one-setting-out error (each distinct setting
predicted by a model fitted without it), because an in-sample fit of four parameters
to five settings always looks good; the form is chosen by that error, with the
one-standard-error rule (:func:`_choose_form`). The held-out error scores ``exec_s``, what
the profiles measured (cold starts kept apart are not in it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rayjoule.modelling import forms
from rayjoule.modelling.fit_data import HeldOut, StageData
from rayjoule.modelling.profiles import ModelError, Profile
from rayjoule.modelling.stage_model import StageModel

__all__ = ["fit_stage"]

HELD_OUT = "leave-one-setting-out"


def min_settings(exchange: bool) -> tuple[int, int]:
    """Distinct settings the (time, energy) models need: one more than their parameters, for
    the noise (a stage that reads through a shuffle has one parameter more in each:
    :func:`forms.time_params`)."""
    return len(forms.time_params(exchange)) + 1, len(forms.energy_params(exchange)) + 1


def fit_stage(profiles: Sequence[Profile]) -> StageModel:
    """Fit a stage's models; raises ModelError when the profiles cannot support them."""
    if not profiles:
        raise ModelError("no profiles to fit: run profiling first")
    stages = sorted({p.stage for p in profiles})
    if len(stages) > 1:
        raise ModelError(f"fit_stage got profiles of several stages ({', '.join(stages)}); "
                         "fit each stage apart (fit_pipeline)")
    data = StageData(profiles)
    name = f"stage {data.stage!r}"
    need_t, need_e = min_settings(data.exchange)
    what = " (with the shuffle's exchange term)" if data.exchange else ""
    _need(name, "time model" + what, data.n_settings, need_t)
    with_energy = bool(data.has_energy.any())
    if with_energy:
        _need(name, "energy model" + what, len(set(data.group[data.has_energy])), need_e)
    scores = {f: data.held_out(f, with_energy) for f in data.candidate_forms()
              if data.full_rank(f)}
    if not scores:
        raise ModelError(
            f"{name}: its {data.n_settings} settings vary tasks over only "
            f"{len(set(data.tasks))} value(s), too few to pin down the time model's "
            f"{len(data.time_params)} parameters; profile at least 4 distinct task counts"
            + (f" and vary the fan-in ({', '.join(data.fan_in_stages)}'s tasks) apart from "
               "them" if data.exchange else ""))
    form = _choose_form(scores)
    score = scores[form]
    energy_memory = False
    if with_energy and data.energy_memory_varies:
        with_mem = data.held_out(form, True, energy_memory=True)
        full = data.fit_energy(data.has_energy, True).rank == len(data.energy_params(True))
        # the memory term must beat the energy model without it by more than the noise
        if full and score.energy_pct > with_mem.energy_pct + with_mem.energy_se:
            energy_memory, score = True, HeldOut(score.exec_pct, with_mem.energy_pct,
                                                 score.exec_se, with_mem.energy_se)
    time_fit = data.fit_time(form, np.ones(data.n, bool))
    energy_fit = data.fit_energy(data.has_energy, energy_memory) if with_energy else None
    if energy_fit is not None and energy_fit.rank < len(data.energy_params(energy_memory)):
        raise ModelError(f"{name}: the profiles with energy do not vary size and tasks "
                         "enough to separate work from per-task energy")
    x = data.parallelism(form)
    ranges = [("tasks", data.tasks), ("num_cpus", data.cpus), ("size", data.size)]
    if data.exchange:
        ranges.append(("fan_in", data.fan_in))
    if data.memory is not None:
        ranges.append(("memory_mb", data.memory))
    return StageModel(
        stage=data.stage, workload=profiles[0].workload, time_form=form, time_fit=time_fit,
        energy_fit=energy_fit,
        cold_starts=tuple(p.cold_start_s for p in profiles if p.cold_start_s is not None),
        profiled_range={k: [float(v.min()), float(v.max())] for k, v in ranges},
        held_out_error={"method": HELD_OUT, "settings": data.n_settings, "quantity": "exec_s",
                        "exec_s_mape_pct": score.exec_pct, "wall_s_mape_pct": score.exec_pct,
                        "total_j_mape_pct": score.energy_pct},
        n_profiles=data.n, n_settings=data.n_settings,
        notes=tuple(_notes(profiles, data, form, energy_memory)),
        parallelism_range=(float(x.min()), float(x.max())), fan_in_stages=data.fan_in_stages,
        memory_values=() if data.memory is None else tuple(sorted(set(data.memory.tolist()))),
        energy_memory=energy_memory, slots=data.slots if form in forms.WAVE_FORMS else None,
    )


#: form tiers, simplest first: CPUs per task do not matter; they do; memory does too
_TIERS = (("tasks", *forms.WAVE_FORMS), tuple(forms.TIME_FORMS), tuple(forms.MEMORY_FORMS))


def _choose_form(scores: Mapping[str, Any]) -> str:
    """The form with the least held-out exec-time error — unless a simpler form is within one
    standard error of it (the one-standard-error rule), simpler meaning ``tasks`` or the
    waves forms (CPUs per task do not enter; the best of them) before the CPU forms
    before the memory forms: a form in which CPUs or memory matter has to beat one in which
    they do not by more than the noise of the comparison. A coin-flip win would let the
    optimiser pick CPUs per task on noise: on the 18:40 live ``pi`` profiles,
    ``tasks·num_cpus`` won by 30.5 % against 30.8 % (standard error 5.9 %) and chose 4 tasks
    × 2 CPUs, 1.21 × the sweep's best; ``tasks`` chooses 8 × 1 CPU, 1.02 ×.
    """
    best = min(scores, key=lambda f: scores[f][0])
    limit = scores[best][0] + scores[best][2]
    for tier in _TIERS:
        near = [f for f in tier if f in scores and scores[f][0] <= limit]
        if near:
            return min(near, key=lambda f: scores[f][0])
    return best


def _need(name: str, what: str, have: int, need: int) -> None:
    if have < need:
        raise ModelError(f"{name} has {have} distinct setting{'s' if have != 1 else ''}; the "
                         f"{what} needs at least {need} ({need - have} more)")


def _notes(profiles: Sequence[Profile], data: StageData, form: str,
           energy_memory: bool) -> list[str]:
    notes = []
    memories = sorted({p.memory_mb for p in profiles if p.memory_mb is not None})
    stage = profiles[0].stage
    if len(memories) > 1 and data.memory is None:
        notes.append(f"stage {stage!r}: memory_mb varies ({memories[0]:g}..{memories[-1]:g}) "
                     "but not every profile knows it, so it is not a setting; profiles "
                     "differing only in memory were pooled")
    elif data.memory is not None and form not in forms.MEMORY_FORMS and not energy_memory:
        notes.append(f"stage {stage!r}: memory varies ({memories[0]:g}..{memories[-1]:g} MB) "
                     "but enters neither time nor energy (the held-out error did not support "
                     "it): it buys nothing, so plans take the least")
    modelled = sum(p.energy_kind == "modelled" for p in profiles)
    if modelled:
        notes.append(f"stage {profiles[0].stage!r}: {modelled} of {len(profiles)} profiles' "
                     "energy was modelled, not measured; so is this prediction's")
    unknown = sum(p.energy_kind not in (None, "measured", "modelled") for p in profiles)
    if unknown:
        notes.append(f"stage {profiles[0].stage!r}: {unknown} of {len(profiles)} profiles' "
                     "energy came from a meter of unknown kind (imported without its "
                     "sidecar): this prediction's joules are not known to be measured")
    return notes
