"""The applications rayjoule meters, as pure map/reduce: every framework runs the same code.

>>> import workloads
>>> wl = workloads.get("primes")
>>> size, params = wl.validate(100, 2, {})
>>> chunks = wl.partition(2, size, 0, params)
>>> wl.summary(wl.reduce([wl.map(c) for c in chunks]))
{'limit': 100, 'count': 25, 'max_prime': 97}

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
from workloads._registry import execute, get, names

__all__ = [
    "Param",
    "ParamValue",
    "Workload",
    "WorkloadError",
    "execute",
    "get",
    "names",
    "parse_param",
    "parse_params",
]
