"""Where experiments keep their tables: one CSV per study under ``experiments/results``."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def write_rows(path: Path, rows: Sequence[dict], fieldnames: Sequence[str] | None = None) -> Path:
    """Write ``rows`` as a CSV table (header from the first row unless given); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fieldnames or rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path
