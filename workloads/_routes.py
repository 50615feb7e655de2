"""How a stage's tasks share an upstream stage's outputs, and where a store keeps them.

Apart from :mod:`workloads._pipeline` (what a pipeline *is*) because executors need only
these: every framework routes outputs the same way, in the driver or inside its workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workloads._base import WorkloadError, split_even

if TYPE_CHECKING:
    from workloads._pipeline import Edge

ROUTES = ("all", "split", "bucket")
"""How a stage's tasks share an upstream stage's outputs (see :func:`route_inputs`)."""


def route_inputs(edge: Edge, upstream: Sequence[Any], index: int, tasks: int) -> list[Any]:
    """Task ``index`` of ``tasks``'s share of one upstream stage's outputs.

    ``upstream`` may hold opaque handles (Ray ObjectRefs, store keys) for ``"all"`` and
    ``"split"``; ``"bucket"`` indexes into each output, so executors holding handles call
    :func:`select_bucket` inside the worker instead.

    >>> from workloads import Edge
    >>> route_inputs(Edge("a", "split"), ["u0", "u1", "u2"], 1, 2)
    ['u2']
    >>> route_inputs(Edge("a", "bucket"), [("x0", "x1"), ("y0", "y1")], 1, 2)
    ['x1', 'y1']
    """
    if edge.route == "all":
        return list(upstream)
    if edge.route == "split":
        start, stop = split_even(len(upstream), tasks)[index]
        return list(upstream[start:stop])
    if edge.route == "bucket":
        return [select_bucket(output, index, tasks) for output in upstream]
    raise WorkloadError(f"route {edge.route!r} must be one of {', '.join(ROUTES)}")


def select_bucket(output: Any, index: int, tasks: int | None = None) -> Any:
    """Bucket ``index`` of one upstream output, checking it is a sequence of ``tasks`` buckets."""
    if not isinstance(output, list | tuple):
        raise WorkloadError(
            f"a bucket-routed stage output must be a list of buckets, not {type(output).__name__}"
        )
    if (tasks is not None and len(output) != tasks) or not 0 <= index < len(output):
        raise WorkloadError(
            f"a bucket-routed stage output holds {len(output)} buckets, but the reading stage "
            f"runs {tasks if tasks is not None else index + 1} tasks (make ctx.fanout buckets)"
        )
    return output[index]


def output_key(run: str, stage: str, index: int, bucket: int | None = None) -> str:
    """The data-store key of one task's output (or one bucket of it) within a run.

    >>> output_key("r1", "map", 3, bucket=0)
    'r1/map/00003/b00000.pkl'
    """
    base = f"{run}/{stage}/{index:05d}"
    return f"{base}.pkl" if bucket is None else f"{base}/b{bucket:05d}.pkl"
