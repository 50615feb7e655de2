"""Sampler: the one periodic-thread primitive; a stopped sampler is replaced by a fresh one."""

from __future__ import annotations

import threading
import time

import pytest

from meters import Sampler, SamplerFailed


def wait_for(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_a_stopped_sampler_is_replaced_at_once_by_a_new_one() -> None:
    first: list[int] = []
    second: list[int] = []
    a = Sampler(lambda: first.append(1), interval_s=0.005, name="window")
    a.start()
    assert wait_for(lambda: len(first) >= 2)
    a.stop()
    assert not a.running
    stopped_at = len(first)
    b = Sampler(lambda: second.append(1), interval_s=0.005, name="window")  # same name
    b.start()
    assert b.running
    assert wait_for(lambda: len(second) >= 3), "the new sampler runs although the old stopped"
    b.stop()
    assert len(first) == stopped_at, "the stopped sampler never ran again"
    assert a.error is None and b.error is None


def test_samplers_share_no_state() -> None:
    boom = Sampler(lambda: 1 / 0, interval_s=0.005, name="failing")
    fine_calls: list[int] = []
    fine = Sampler(lambda: fine_calls.append(1), interval_s=0.005, name="fine")
    boom.start()
    fine.start()
    assert wait_for(lambda: boom.error is not None and len(fine_calls) >= 3)
    fine.check()  # the other sampler's failure is not this one's
    with pytest.raises(SamplerFailed, match="ZeroDivisionError"):
        boom.check()
    boom.stop()
    fine.stop()
    assert not (set(vars(boom)) - {"_fn", "interval_s", "name", "_stop", "_thread", "_error"})
    assert vars(boom)["_stop"] is not vars(fine)["_stop"]


def test_start_twice_is_refused_and_stop_is_idempotent() -> None:
    s = Sampler(lambda: None, interval_s=0.01, name="once")
    s.start()
    with pytest.raises(RuntimeError, match="already started"):
        s.start()
    s.stop()
    s.stop()
    assert not s.running
    assert all(t.name != "rayjoule-once" for t in threading.enumerate())


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="> 0"):
        Sampler(lambda: None, interval_s=0, name="bad")
