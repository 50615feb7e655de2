"""Measured blocks: any Ray code metered as it is, per Ray task (``rayjoule.measure()``).

* :mod:`.block` — :class:`Measurement` / :func:`measure`, the block itself;
* :mod:`.decorator` — ``@measured``, a function metered on every call;
* :mod:`.task_events` — which Ray tasks ran inside the block (Ray's task events);
* :mod:`.worker_cpu` — how much CPU time each used (Ray workers sampled at the edges);
* :mod:`.task_records` — those tasks as rayjoule's TaskRecords, stages and summary;
* :mod:`.guards` — one open block per process, and :func:`wait_all` for pending ones.
"""

from rayjoule.runs.measured_block.block import Measurement, measure
from rayjoule.runs.measured_block.decorator import MeasuredFunction, measured
from rayjoule.runs.measured_block.guards import wait_all

__all__ = ["MeasuredFunction", "Measurement", "measure", "measured", "wait_all"]
