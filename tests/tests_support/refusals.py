"""The check every hostile-input test makes: a command refuses bad input in one line, exit 2,
and leaves every file in the folder byte for byte as it was (no file created either)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (Python's byte-code caches aside) → its SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def assert_refused(call: Callable[[], int], folder: Path, capsys, fragment: str) -> str:
    """Run ``call`` (a command's exit status); assert exit 2, one stderr line without a
    traceback holding ``fragment``, and the folder unchanged. The line, for more checks."""
    before = snapshot(folder)
    capsys.readouterr()
    code = call()
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert fragment in err, err
    assert snapshot(folder) == before
    return err
