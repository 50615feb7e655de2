"""The applications rayjoule meters, as pure map/reduce: every framework runs the same code.

>>> import workloads
>>> wl = workloads.get("primes")
>>> size, params = wl.validate(100, 2, {})
>>> chunks = wl.partition(2, size, 0, params)
>>> wl.summary(wl.reduce([wl.map(c) for c in chunks]))
{'limit': 100, 'count': 25, 'max_prime': 97}

Multi-stage pipelines (DAGs of such maps, data between stages through a
:class:`workloads.DataStore`) follow :class:`workloads.Pipeline`:

>>> workloads.execute_pipeline("wordcount", size=1000, tasks=2)["words"]
1000

See :class:`workloads.Workload` for the contract. Imports here stay light: numpy only.
"""

from workloads._base import (
    Param,
    ParamValue,
    Workload,
    WorkloadError,
    parse_param,
    parse_params,
)
from workloads._datastore import DataStore
from workloads._folder_store import FolderStore
from workloads._memory_store import MemoryStore
from workloads._pipeline import Edge, Pipeline, Stage, TaskContext, as_pipeline
from workloads._registry import (
    execute,
    execute_pipeline,
    get,
    get_pipeline,
    names,
    pipeline_names,
)
from workloads._routes import output_key, route_inputs, select_bucket
from workloads._s3_store import S3Store
from workloads._serial import run_serial

__all__ = [
    "DataStore",
    "Edge",
    "FolderStore",
    "MemoryStore",
    "Param",
    "ParamValue",
    "Pipeline",
    "S3Store",
    "Stage",
    "TaskContext",
    "Workload",
    "WorkloadError",
    "as_pipeline",
    "execute",
    "execute_pipeline",
    "get",
    "get_pipeline",
    "names",
    "output_key",
    "parse_param",
    "parse_params",
    "pipeline_names",
    "route_inputs",
    "run_serial",
    "select_bucket",
]
