"""Where pipeline stages leave their outputs: memory, a local folder, or S3-compatible storage.

One interface, one class per backend, so executors and stages never branch on the backend::

    store = DataStore.from_uri("s3://bucket/runs")    # or "/tmp/x", "file:///tmp/x", "memory://"
    store.check()                                     # fail fast, one line, before any work
    key = store.put("run1/map/00000.pkl", obj)        # pickle protocol 5
    obj = store.get(key)
    store.delete_prefix("run1")

:meth:`DataStore.from_uri` picks the backend: :class:`~workloads._memory_store.MemoryStore`,
:class:`~workloads._folder_store.FolderStore` or :class:`~workloads._s3_store.S3Store` (the
last two through ``pyarrow.fs``, already a dependency; no boto3). A store pickles as its URI
and options only, so it can travel to Ray and Lithops workers; what a backend does in another
process is said in its class.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlparse

from workloads._base import WorkloadError


@dataclass
class DataStore(ABC):
    """A key -> pickled-object store rooted at ``uri``; keys are ``/``-separated paths.

    Build one with :meth:`from_uri`. ``root`` is where keys live in the backend (a local
    folder, ``bucket/prefix`` for S3, ``""`` in memory). Every backend keeps this contract
    (``tests/workloads/test_datastore.py``'s ``DataStoreContract`` checks it):

    * :meth:`put` overwrites; readers never see half an object. :meth:`get` of a missing key
      raises :class:`WorkloadError` naming the key. Bad keys (absolute, empty, ``.``/``..``
      parts) raise ``WorkloadError`` before anything is touched.
    * :meth:`delete_prefix` deletes a folder-like key and what is under it; deleting nothing
      is fine; ``""`` empties the store.
    * :meth:`list_inputs` and :meth:`read_bytes` read a user's input data.
    * :meth:`check` fails fast with one ``WorkloadError`` line unless the store can be
      written and read; it leaves nothing behind.
    * Every failure of the backend is a one-line ``WorkloadError`` naming the store.
    """

    uri: str
    root: str

    #: "memory" | "local" | "s3"
    kind: ClassVar[str] = ""

    @classmethod
    def from_uri(cls, uri: str | os.PathLike[str] | None = None,
                 endpoint_override: str | None = None) -> DataStore:
        """A store for a folder path, ``file://``, ``memory://`` or ``s3://bucket/prefix``.

        Without ``uri``, a fresh temporary folder that the caller owns (and deletes). The S3
        endpoint comes from ``endpoint_override`` or ``AWS_ENDPOINT_URL`` (``http://host:port``
        for MinIO or moto); credentials from the usual AWS environment variables.

        >>> store = DataStore.from_uri("memory://")
        >>> store.get(store.put("a/b", {"x": 1}))
        {'x': 1}
        """
        from workloads._folder_store import FolderStore

        if uri is None:
            path = tempfile.mkdtemp(prefix="rayjoule-store-")
            return FolderStore(f"file://{path}", path)
        text = os.fspath(uri)
        parsed = urlparse(text)
        if parsed.scheme == "memory":
            from workloads._memory_store import MemoryStore

            return MemoryStore.new(text)
        if parsed.scheme == "s3":
            from workloads._s3_store import S3Store

            if not parsed.netloc:
                raise WorkloadError(f"data store URI {text!r} names no bucket (s3://bucket/prefix)")
            root = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
            endpoint = endpoint_override or os.environ.get("AWS_ENDPOINT_URL") or None
            return S3Store(text, root, endpoint)
        if parsed.scheme == "file":
            path = parsed.path
        elif parsed.scheme and len(parsed.scheme) > 1:  # "C:" is a drive, not a scheme
            raise WorkloadError(
                f"data store URI {text!r}: unsupported scheme {parsed.scheme!r} "
                "(use a folder path, file://, memory:// or s3://bucket/prefix)"
            )
        else:
            path = text
        return FolderStore(text, os.path.abspath(os.path.expanduser(path)))

    # -- the interface --------------------------------------------------------------------

    def put(self, key: str, obj: Any) -> str:
        """Pickle ``obj`` (protocol 5) under ``key``; return the key."""
        self._write(key, self._path(key), pickle.dumps(obj, protocol=5))
        return key

    def get(self, key: str) -> Any:
        """The object stored under ``key``; a missing key raises WorkloadError naming it."""
        return pickle.loads(self._read(key, self._path(key)))

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under ``prefix`` (a folder-like key; ``""`` = everything)."""
        self._delete(prefix, self._path(prefix) if prefix else self.root)

    @abstractmethod
    def list_inputs(self, prefix: str = "") -> list[tuple[str, int]]:
        """``(key, bytes)`` of every file under ``prefix``, sorted by key: a user's input data.

        When the store's root (or ``root/prefix``) is itself a file, that one file is listed
        (with key ``prefix``, ``""`` for the root). Hidden files (``.name``) are skipped.
        """

    @abstractmethod
    def read_bytes(self, key: str, start: int = 0, length: int | None = None) -> bytes:
        """Raw bytes ``[start, start + length)`` of an input file (to EOF without ``length``)."""

    @abstractmethod
    def check(self) -> None:
        """Fail fast with one WorkloadError line unless this store can be written and read."""

    @abstractmethod
    def _write(self, key: str, path: str, data: bytes) -> None:
        """Store ``data`` at ``path`` (``key`` resolved), atomically for readers."""

    @abstractmethod
    def _read(self, key: str, path: str) -> bytes:
        """The bytes at ``path``; a missing one raises WorkloadError naming ``key``."""

    @abstractmethod
    def _delete(self, prefix: str, path: str) -> None:
        """Delete what is at or under ``path`` (``prefix`` resolved; the root for ``""``)."""

    # -- shared rules ---------------------------------------------------------------------

    def _path(self, key: str) -> str:
        parts = key.split("/")
        if key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise WorkloadError(f"data store key {key!r} must be a relative path without "
                                "empty, '.' or '..' parts")
        return f"{self.root}/{key}" if self.root else key


def under(key: str, prefix: str) -> bool:
    """Whether ``key`` is ``prefix`` or lies below it (``""`` is above everything)."""
    return not prefix or key == prefix or key.startswith(prefix.rstrip("/") + "/")


def first_line(err: BaseException) -> str:
    """The first line of an error, so a multi-line AWS SDK message stays one line."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
