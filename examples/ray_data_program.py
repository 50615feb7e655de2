"""A Ray Data program whose keyword arguments are its knobs, ready for ``tune --program``.

The job: score ``rows`` synthetic events. It writes its own input (``files`` Parquet files,
once, into ``folder`` — by default a folder under the system temp dir), reads them with
``ray.data.read_parquet``, cleans each batch with a plain function, scores it with a CLASS
UDF run by a pool of ``concurrency`` actors (each builds a lookup table in ``__init__``:
~0.4 s of CPU per actor, like loading a model), and aggregates the scores.

The knobs pull against each other, which is what makes them worth tuning for joules:

* ``concurrency`` — more scoring actors run batches in parallel, but every actor costs a
  worker process and its table build; on a small machine the extra actors only add CPU.
* ``batch_size`` — rows per UDF call; small batches pay Ray Data's per-batch cost often.
* ``num_cpus`` — CPUs each read/clean task reserves: small values run more of them at once
  (more processes, more contention), large ones fewer.
* ``blocks`` — how many blocks the read makes (a keyword too; the example's space file
  leaves it at its default).

The defaults (4 actors, batches of 256 rows, read tasks of 0.25 CPU, 64 blocks) are what a
user might write first on a laptop: "parallel enough". They are not the cheapest in joules
(see experiments/RESULTS_program_tuner.md for the measured grid).

    python -m rayjoule.tune --program examples.ray_data_program:etl \\
        --space examples/ray_data_program.toml --trials 12
    python examples/ray_data_program.py              # one metered run at the defaults
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

#: rows and input files; not knobs (the tune keeps them fixed), but keyword arguments too
ROWS = 400_000
FILES = 8
TABLE_SIZE = 1 << 16
#: CPUs each scoring actor reserves. Small on purpose: a pool of actors that reserved every
#: CPU would leave none for the read tasks, and Ray Data then waits for ever (4 actors × 0.5
#: CPU on a 2-CPU machine did). Ray does not cap a task's real CPU use at its reservation.
ACTOR_CPUS = 0.25


def write_input(folder: Path, rows: int = ROWS, files: int = FILES) -> list[str]:
    """Write the job's input once (deterministic content; reused when already there)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"events-{i:03d}.parquet" for i in range(files)]
    per_file = rows // files
    for i, path in enumerate(paths):
        if path.exists():
            continue
        rng = np.random.default_rng(i)
        table = pa.table({
            "user": rng.integers(0, TABLE_SIZE, per_file, dtype=np.int64),
            "amount": rng.gamma(2.0, 10.0, per_file),
            "flag": rng.integers(0, 4, per_file, dtype=np.int8),
        })
        tmp = path.with_suffix(".tmp")
        pq.write_table(table, tmp)
        tmp.replace(path)  # atomic: a concurrent run never reads half a file
    return [str(p) for p in paths]


def clean(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The plain-function stage: drop flagged rows, log-scale the amount."""
    keep = batch["flag"] != 3
    return {"user": batch["user"][keep], "amount": np.log1p(batch["amount"][keep])}


class Scorer:
    """The class UDF: its start-up builds a per-user weight table (~0.4 s of CPU per
    actor, the stand-in for loading a model); each call is a cheap lookup."""

    def __init__(self) -> None:
        rng = np.random.default_rng(42)
        w = rng.standard_normal((TABLE_SIZE, 64))
        for _ in range(3):  # a few rounds of "training" so the start-up cost is real
            w = np.tanh(w @ rng.standard_normal((64, 64)) / 8.0)
        self.weights = w.mean(axis=1)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"score": self.weights[batch["user"]] * batch["amount"]}


def etl(concurrency: int = 4, batch_size: int = 256, num_cpus: float = 0.25,
        blocks: int = 64, rows: int = ROWS, files: int = FILES,
        folder: str | None = None) -> dict[str, Any]:
    """Read → clean → score (class UDF, actor pool) → aggregate; returns a small summary."""
    import ray

    where = Path(folder) if folder else \
        Path(tempfile.gettempdir()) / f"rayjoule-example-etl-{rows}-{files}"
    paths = write_input(where, rows, files)
    ds = ray.data.read_parquet(paths, override_num_blocks=blocks, num_cpus=num_cpus)
    ds = ds.map_batches(clean, batch_format="numpy", num_cpus=num_cpus)
    ds = ds.map_batches(Scorer, batch_format="numpy", batch_size=batch_size,
                        compute=ray.data.ActorPoolStrategy(size=concurrency),
                        num_cpus=ACTOR_CPUS)
    agg = ds.aggregate(ray.data.aggregate.Count(), ray.data.aggregate.Sum("score"))
    return {"rows": int(agg["count()"]), "score": round(float(agg["sum(score)"]), 3)}


def main() -> None:
    """One metered run at the defaults (or at the settings given), printed like a trial."""
    import argparse

    import rayjoule

    ap = argparse.ArgumentParser(description="Run the example ETL once under rayjoule.measure")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--num-cpus", type=float, default=0.25)
    ap.add_argument("--blocks", type=int, default=64)
    ap.add_argument("--meter", default="auto")
    ap.add_argument("--db", default="rayjoule.sqlite")
    args = ap.parse_args()
    with rayjoule.measure("ray-data-etl", meter=args.meter, db=args.db,
                          background=False) as m:
        out = etl(concurrency=args.concurrency, batch_size=args.batch_size,
                  num_cpus=args.num_cpus, blocks=args.blocks)
    r = m.result
    print(out)
    print(f"run {r.run_id}: {r.wall_s:.2f} s, {r.energy.total_j:.1f} J "
          f"[{r.meter.name}, {r.meter.kind}]")
    for s in r.stages:
        print(f"  {s.name:40s} {s.tasks:4d} tasks {s.energy.total_j:7.1f} J")


if __name__ == "__main__":
    main()
