"""Where experiments keep their tables: one CSV per study under ``experiments/results``."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def write_rows(path: Path, rows: Sequence[dict], fieldnames: Sequence[str] | None = None) -> Path:
    """Write ``rows`` as a CSV table (header from the first row unless given); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fieldnames or rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_rows(path: Path) -> list[dict[str, Any]]:
    """A CSV :func:`write_rows` wrote, each cell back as None (empty), int, float or text."""
    with path.open(newline="") as fh:
        return [{k: _cell(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _cell(text: str) -> Any:
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
