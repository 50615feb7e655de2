"""The ``flavour`` parameter shared by the workloads that came from public Lithops applications.

``fast`` runs today's kernels (vectorised, little interpreter work per item). ``lithops``
reproduces the original application's work per call, as the thesis measured it: the same
algorithm, numeric types, default sizes and call counts, with the random numbers seeded
per call so the result stays deterministic for any number of tasks.

>>> flavour_param("pi: 100 calls of 10**7 points").choices
('fast', 'lithops')
>>> block_seed(0, 1) == block_seed(0, 1) != block_seed(1, 0)
True
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from workloads._base import Param, ParamValue, Workload, WorkloadError

FAST = "fast"
LITHOPS = "lithops"
FLAVOURS = (FAST, LITHOPS)


def flavour_param(lithops_help: str) -> Param:
    """The ``flavour`` Param: ``fast`` (default) or ``lithops``, described by ``lithops_help``."""
    return Param("flavour", str, FAST,
                 f"fast (today's kernels) or lithops (the original application's work per call: "
                 f"{lithops_help})", choices=FLAVOURS)


def check_unused(workload: Workload, params: dict[str, ParamValue], names: Iterable[str]) -> None:
    """Refuse non-default values of ``names``: they do not apply to the chosen flavour.

    A parameter that a flavour ignores would otherwise change nothing, silently.
    """
    flavour = params["flavour"]
    for name in names:
        param = workload.param(name)
        if params[name] != param.default:
            raise WorkloadError(
                f"parameter {name!r} does not apply to flavour={flavour}; leave it at its "
                f"default ({param.default!r}) or choose another flavour"
            )


def block_seed(seed: int, block: int) -> int:
    """A 128-bit integer seed for block ``block`` of a run seeded with ``seed``.

    Derived through ``numpy.random.SeedSequence([seed, block])`` like the fast kernels'
    generators, so blocks are independent streams; it seeds ``random.Random``, the generator
    behind the ``random.random()`` that the original pi example called.
    """
    words = np.random.SeedSequence([seed, block]).generate_state(4, dtype=np.uint32)
    return int.from_bytes(words.astype("<u4").tobytes(), "little")
