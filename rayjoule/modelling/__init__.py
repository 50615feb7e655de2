"""Floor 4: profiles → fitted energy/time models → predictions → the optimiser.

Four explicit steps (flexecutor's split): profile (:func:`profiles_from_store`,
:func:`parse_flexecutor`), train (:func:`fit_stage`), predict
(:meth:`StageModel.predict`), optimise (:func:`optimise`, Jolteon's chance
constraint with joules as the cost). The model forms are stated in :mod:`.forms`.
"""

from rayjoule.modelling.fit import (
    Estimate,
    ModelError,
    Prediction,
    StageModel,
    fit_stage,
    fit_stages,
)
from rayjoule.modelling.flexecutor import parse_flexecutor, to_flexecutor_json
from rayjoule.modelling.optimise import Plan, default_grid, optimise
from rayjoule.modelling.profiles import Profile, bucket_reads, profiles_from_store

__all__ = [
    "Estimate",
    "ModelError",
    "Plan",
    "Prediction",
    "Profile",
    "StageModel",
    "bucket_reads",
    "default_grid",
    "fit_stage",
    "fit_stages",
    "optimise",
    "parse_flexecutor",
    "profiles_from_store",
    "to_flexecutor_json",
]
