"""Tiny Ray programs the program-tuner tests tune (loaded as ``file.py:FUNCTION``)."""

import ray


@ray.remote
def square_sum(n: int) -> int:
    return sum(i * i for i in range(n))


def squares(tasks=2, size=20_000, mode="sum"):
    """Ray Core: ``tasks`` tasks share ``size`` units of work."""
    refs = [square_sum.options(name="squares.chunk").remote(size // tasks)
            for _ in range(tasks)]
    total = sum(ray.get(refs))
    return total if mode == "sum" else -total


def flaky(tasks=2, size=10_000):
    """Fails when given more than 3 tasks: a raising trial."""
    if tasks > 3:
        raise ValueError(f"{tasks} tasks is too many for this program")
    return squares(tasks=tasks, size=size)


def broken(tasks=2):
    """Fails at its defaults."""
    raise RuntimeError("this program never works")


def own_init(tasks=2, size=20_000):
    """A program that calls ray.init() itself, as a script would."""
    ray.init()
    return squares(tasks=tasks, size=size)


def own_init_until_stopped(tasks=2, size=20_000):
    """Calls ray.init() itself, runs, then works on until it is stopped: files in the folder
    ``RAYJOULE_TEST_MARKS`` names say it started and that it was stopped by SIGTERM (Ray's
    handler raises SystemExit, so ``finally`` runs; a SIGKILL would leave no mark)."""
    import os
    import time
    from pathlib import Path

    marks = Path(os.environ["RAYJOULE_TEST_MARKS"])
    ray.init()
    squares(tasks=tasks, size=size)
    (marks / "started").write_text("")
    try:
        time.sleep(300)
    finally:
        (marks / "stopped").write_text("")


def data_pipeline(batch_size=64, rows=400):
    """Ray Data: range → map_batches → count."""
    ds = ray.data.range(rows).map_batches(lambda b: {"id": b["id"] * 2},
                                          batch_size=batch_size)
    return ds.count()
