"""Workloads that fail on purpose, built from the real ``sleep`` workload's plumbing.

Ray pickles this module by value (see ``ship_by_value``) because Ray's
workers cannot import test modules.
"""

from __future__ import annotations

import dataclasses
import os
import signal

import workloads


def _raise(chunk):
    raise ValueError("this chunk is cursed")


def _kill_worker(chunk):
    os.kill(os.getpid(), signal.SIGKILL)


def _pid_dependent(chunk):
    return os.getpid()


def _sum_pids(partials):
    return sum(partials)


def _pid_summary(result):
    return {"pids": result}


def raising():
    return dataclasses.replace(workloads.get("sleep"), name="cursed", map=_raise)


def killing():
    return dataclasses.replace(workloads.get("sleep"), name="killer", map=_kill_worker)


def nondeterministic():
    """Its summary depends on which process ran it, so frameworks disagree."""
    return dataclasses.replace(workloads.get("sleep"), name="pidsum", map=_pid_dependent,
                               reduce=_sum_pids, summary=_pid_summary)


def ship_by_value() -> None:
    import sys

    from ray import cloudpickle  # Ray's vendored copy is the one that pickles tasks

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _numbered_partition(tasks, size, seed, params):
    return list(range(tasks))


def _times_ten_or_raise_at_2(chunk):
    if chunk == 2:
        raise ValueError("chunk 2 is cursed")
    return chunk * 10


def _times_ten(chunk):
    return chunk * 10


def _kill_at_1(chunk):
    if chunk == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return chunk


def _identity(partials):
    return list(partials)


def _as_summary(result):
    return {"values": result}


def numbered(name: str = "numbered", map_fn=_times_ten):
    """Chunk i → ``map_fn(i)``; the summary lists the partials in order."""
    return dataclasses.replace(workloads.get("sleep"), name=name, partition=_numbered_partition,
                               map=map_fn, reduce=_identity, summary=_as_summary)


def cursed_at_2():
    return numbered("cursed2", _times_ten_or_raise_at_2)


def killer_at_1():
    return numbered("killer1", _kill_at_1)
