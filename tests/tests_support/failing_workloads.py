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
