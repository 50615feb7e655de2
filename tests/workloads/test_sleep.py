"""sleep: the idle control splits its seconds over tasks and reports the total."""

from __future__ import annotations

import time

import workloads
from workloads import sleep


def test_each_task_sleeps_its_share():
    chunks = sleep.partition(4, 0.2, 0, {})
    assert [chunk.seconds for chunk in chunks] == [0.05] * 4
    start = time.monotonic()
    sleep.map(chunks[0])
    assert time.monotonic() - start >= 0.05


def test_summary_is_the_total():
    assert workloads.execute("sleep", size=0.03, tasks=3) == {"seconds": 0.03}
    assert workloads.execute("sleep", size=0, tasks=2) == {"seconds": 0.0}
