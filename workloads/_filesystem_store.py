"""What the folder and S3 data stores share: reading and writing through ``pyarrow.fs``.

A store pickles without its filesystem, which is re-created lazily in each process, so a
store can travel to Ray and Lithops workers.
"""

from __future__ import annotations

import uuid
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

from workloads._base import WorkloadError
from workloads._datastore import DataStore, first_line


@dataclass
class FileSystemStore(DataStore):
    """A data store on a ``pyarrow.fs`` filesystem; subclasses say which one."""

    def __post_init__(self) -> None:
        self._fs: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fs": None}

    def filesystem(self) -> Any:
        """The ``pyarrow.fs`` filesystem, created on first use in each process."""
        if self._fs is None:
            self._fs = self._connect()
        return self._fs

    @abstractmethod
    def _connect(self) -> Any:
        """A new filesystem for ordinary reads and writes."""

    def _write(self, key: str, path: str, data: bytes) -> None:
        try:
            with self.filesystem().open_output_stream(path) as out:
                out.write(data)
        except OSError as err:
            raise WorkloadError(f"cannot write {key!r} to data store {self.uri}: {err}") from err

    def _read(self, key: str, path: str) -> bytes:
        try:
            with self.filesystem().open_input_stream(path) as stream:
                return stream.readall()
        except FileNotFoundError as err:
            raise WorkloadError(f"no object {key!r} in data store {self.uri}") from err
        except OSError as err:
            raise WorkloadError(f"cannot read {key!r} from data store {self.uri}: {err}") from err

    def _delete(self, prefix: str, path: str) -> None:
        fs = self.filesystem()
        try:
            if prefix:
                info = fs.get_file_info(path)
                if info.type.name == "File":
                    fs.delete_file(path)
                elif info.type.name == "Directory" or not self._real_folders:
                    fs.delete_dir_contents(path, missing_dir_ok=True)
                    if info.type.name == "Directory":
                        fs.delete_dir(path)
            else:
                fs.delete_dir_contents(path, missing_dir_ok=True)
        except OSError as err:
            raise WorkloadError(
                f"cannot delete {prefix!r} from data store {self.uri}: {err}"
            ) from err

    #: False where folders are only key prefixes (object storage): a prefix that is
    #: "not found" may still have objects under it
    _real_folders = True

    def list_inputs(self, prefix: str = "") -> list[tuple[str, int]]:
        import pyarrow.fs as pafs

        fs = self.filesystem()
        path = self._path(prefix) if prefix else self.root
        try:
            info = fs.get_file_info(path)
            if info.type == pafs.FileType.File:
                return [(prefix, info.size)]
            if info.type == pafs.FileType.NotFound:
                raise WorkloadError(f"input {prefix or self.uri!r} not found in {self.uri}")
            infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
        except OSError as err:
            raise WorkloadError(f"cannot list {prefix!r} in {self.uri}: {err}") from err
        start = len(self.root) + 1
        files = [
            (info.path[start:], info.size) for info in infos
            if info.type == pafs.FileType.File and not info.base_name.startswith(".")
        ]
        return sorted(files)

    def read_bytes(self, key: str, start: int = 0, length: int | None = None) -> bytes:
        try:
            with self.filesystem().open_input_file(self._path(key) if key else self.root) as f:
                size = f.size()
                if length is None:
                    length = size - start
                return f.read_at(max(0, min(length, size - start)), start)
        except FileNotFoundError as err:
            raise WorkloadError(f"no input {key!r} in {self.uri}") from err
        except OSError as err:
            raise WorkloadError(f"cannot read {key!r} from {self.uri}: {err}") from err

    def _probe(self, fs: Any) -> None:
        """Put, read back and delete a tiny object: the last step of :meth:`check`."""
        probe = self._path(f".rayjoule-check-{uuid.uuid4().hex}")
        step = "write to"
        try:
            with fs.open_output_stream(probe) as out:
                out.write(b"ok")
            step = "read back from"
            with fs.open_input_stream(probe) as stream:
                if stream.readall() != b"ok":
                    raise WorkloadError(f"data store {self.uri} returned other bytes than written")
            step = "delete from"
            fs.delete_file(probe)
        except OSError as err:
            raise WorkloadError(f"data store {self.uri}: cannot {step} it "
                                f"({first_line(err)})") from None
