"""The ``memory://`` data store: objects in this process's memory (tests, one-process runs).

A copy unpickled in another process (a worker, a forked child with its own copy of the
registry) refuses to work instead of silently reading nothing.
"""

from __future__ import annotations

import os
import threading
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

from workloads._base import WorkloadError
from workloads._datastore import DataStore, under


class _Memory:
    """The objects of one ``memory://`` store (weak-referenceable, unlike a dict)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.lock = threading.Lock()


_LIVE_MEMORY: weakref.WeakValueDictionary[str, _Memory] = weakref.WeakValueDictionary()
"""Live memory stores by token: a cache that lets a same-process pickle round trip find its
objects again; entries vanish with the last store that holds them."""


@dataclass
class MemoryStore(DataStore):
    """Objects kept in this process; its pickled copies work in this process only."""

    kind = "memory"
    token: str = ""
    _memory: _Memory | None = field(default=None, repr=False, compare=False)
    _origin_pid: int | None = field(default=None, repr=False, compare=False)

    @classmethod
    def new(cls, uri: str) -> MemoryStore:
        """A new, empty store."""
        token, memory = uuid.uuid4().hex, _Memory()
        _LIVE_MEMORY[token] = memory
        return cls(uri, "", token, memory)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_memory": None, "_origin_pid": os.getpid()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        # a forked child inherits a *copy* of the registry: writes there would be lost
        if self._origin_pid == os.getpid():
            self._memory = _LIVE_MEMORY.get(self.token)

    def _write(self, key: str, path: str, data: bytes) -> None:
        memory = self._live()
        with memory.lock:
            memory.objects[key] = data

    def _read(self, key: str, path: str) -> bytes:
        memory = self._live()
        with memory.lock:
            data = memory.objects.get(key)
        if data is None:
            raise WorkloadError(f"no object {key!r} in data store {self.uri}")
        return data

    def _delete(self, prefix: str, path: str) -> None:
        memory = self._live()
        with memory.lock:
            for key in [k for k in memory.objects if under(k, prefix)]:
                del memory.objects[key]

    def list_inputs(self, prefix: str = "") -> list[tuple[str, int]]:
        memory = self._live()
        with memory.lock:
            return sorted((k, len(v)) for k, v in memory.objects.items() if under(k, prefix))

    def read_bytes(self, key: str, start: int = 0, length: int | None = None) -> bytes:
        data = self._read(key, key)
        return data[start:] if length is None else data[start:start + length]

    def check(self) -> None:
        self._live()

    def _live(self) -> _Memory:
        if self._memory is None:
            raise WorkloadError(
                f"memory:// data store from process {self._origin_pid} is not available in "
                f"process {os.getpid()}: it lives in one process only; use a folder or s3:// "
                "instead"
            )
        return self._memory
