"""Floor 4: profiles → fitted energy/time models → predictions → the optimiser.

Four explicit steps (flexecutor's split): profile (:func:`design` and :func:`run_design`,
read back with :func:`profiles_from_store` / :func:`choose_profiles`, or imported with
:func:`parse_flexecutor`), train (:func:`fit_stage`, a pipeline with
:func:`fit_pipeline`), predict (:meth:`StageModel.predict`), optimise (:func:`optimise`,
Jolteon's chance constraint with joules as the cost; :meth:`PipelineModel.plan` adds the
stages that run at one setting). :func:`plan_from_store` is the four in one call. The
model forms are stated in :mod:`.forms`.
"""

from rayjoule.modelling.estimates import Estimate, Prediction
from rayjoule.modelling.fit import fit_stage
from rayjoule.modelling.flexecutor import parse_flexecutor, to_flexecutor_json
from rayjoule.modelling.optimise import default_grid, optimise
from rayjoule.modelling.pipeline import (
    FixedEstimate,
    FixedStage,
    PipelineModel,
    PipelinePlan,
    fit_pipeline,
)
from rayjoule.modelling.planning import (
    PredictionReport,
    StageSettings,
    plan_from_store,
    profiled_size,
)
from rayjoule.modelling.plans import NearOptimal, Plan
from rayjoule.modelling.profiles import (
    ChosenProfiles,
    ModelError,
    Profile,
    bucket_reads,
    choose_profiles,
    exchanges_of,
    profiles_from_store,
    reads_of,
    stage_reads,
)
from rayjoule.modelling.profiling_design import (
    ProfileDesign,
    ProfilePoint,
    default_sizes,
    design,
    paired_concurrency,
    task_counts,
)
from rayjoule.modelling.profiling_runs import ProfilingOutcome, run_design, store_timings
from rayjoule.modelling.stage_model import StageModel

__all__ = [
    "ChosenProfiles",
    "Estimate",
    "FixedEstimate",
    "FixedStage",
    "ModelError",
    "NearOptimal",
    "PipelineModel",
    "PipelinePlan",
    "Plan",
    "Prediction",
    "PredictionReport",
    "Profile",
    "ProfileDesign",
    "ProfilePoint",
    "ProfilingOutcome",
    "StageModel",
    "StageSettings",
    "bucket_reads",
    "choose_profiles",
    "default_grid",
    "default_sizes",
    "design",
    "exchanges_of",
    "reads_of",
    "stage_reads",
    "fit_pipeline",
    "fit_stage",
    "optimise",
    "paired_concurrency",
    "parse_flexecutor",
    "plan_from_store",
    "profiled_size",
    "profiles_from_store",
    "run_design",
    "store_timings",
    "task_counts",
    "to_flexecutor_json",
]
