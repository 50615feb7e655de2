"""The folder data store: a local (or network-mounted) folder, through ``pyarrow.fs``."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

from workloads._base import WorkloadError
from workloads._filesystem_store import FileSystemStore


@dataclass
class FolderStore(FileSystemStore):
    """Objects as files under the folder ``root``; a write is a temporary file moved into
    place, so readers never see half an object. Works in any process that sees the folder."""

    kind = "local"

    def _connect(self) -> Any:
        import pyarrow.fs as pafs

        return pafs.LocalFileSystem()

    def _write(self, key: str, path: str, data: bytes) -> None:
        fs = self.filesystem()
        try:
            fs.create_dir(os.path.dirname(path), recursive=True)
            tmp = f"{path}.{uuid.uuid4().hex}.tmp"
            with fs.open_output_stream(tmp) as out:
                out.write(data)
            fs.move(tmp, path)  # readers never see half an object
        except OSError as err:
            raise WorkloadError(f"cannot write {key!r} to data store {self.uri}: {err}") from err

    def check(self) -> None:
        """The folder exists (created if need be) and a tiny file can be written, read
        back and deleted."""
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as err:
            raise WorkloadError(f"data store {self.uri}: cannot create {self.root}: "
                                f"{err.strerror or err}") from None
        self._probe(self.filesystem())
