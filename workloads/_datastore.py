"""Where pipeline stages leave their outputs: memory, a local folder, or S3-compatible storage.

One class covers all three so executors and stages never branch on the backend::

    store = DataStore.from_uri("s3://bucket/runs")    # or "/tmp/x", "file:///tmp/x", "memory://"
    store.check()                                     # fail fast, one line, before any work
    key = store.put("run1/map/00000.pkl", obj)        # pickle protocol 5
    obj = store.get(key)
    store.delete_prefix("run1")

Folders and S3 go through ``pyarrow.fs`` (already a dependency; no boto3). A store pickles as
its URI and options only; the filesystem is re-created lazily in each worker, so a store can
travel to Ray and Lithops workers. ``memory://`` lives in the process that created it: a copy
unpickled elsewhere refuses to work instead of silently reading nothing.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import threading
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from workloads._base import WorkloadError

CHECK_TIMEOUT_S = 3.0
"""Connect and request timeout for :meth:`DataStore.check`: an unreachable endpoint must fail
in seconds, not after the AWS SDK's minutes of retries."""

_TIMEOUT_S = 30.0
"""Connect and request timeout for ordinary reads and writes of stage outputs."""


class _Memory:
    """The objects of one ``memory://`` store (weak-referenceable, unlike a dict)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.lock = threading.Lock()


_LIVE_MEMORY: weakref.WeakValueDictionary[str, _Memory] = weakref.WeakValueDictionary()
"""Live memory stores by token: a cache that lets a same-process pickle round trip find its
objects again; entries vanish with the last store that holds them."""


@dataclass
class DataStore:
    """A key -> pickled-object store rooted at ``uri``; keys are ``/``-separated paths.

    Build one with :meth:`from_uri`. ``root`` is the filesystem path under which keys live
    (a local folder, or ``bucket/prefix`` for S3).
    """

    uri: str
    kind: str  # "local" | "s3" | "memory"
    root: str
    endpoint_override: str | None = None
    _token: str = field(default="", repr=False)
    _memory: _Memory | None = field(default=None, repr=False, compare=False)
    _fs: Any = field(default=None, repr=False, compare=False)

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
        if uri is None:
            path = tempfile.mkdtemp(prefix="rayjoule-store-")
            return cls(f"file://{path}", "local", path)
        text = os.fspath(uri)
        parsed = urlparse(text)
        if parsed.scheme == "memory":
            token = uuid.uuid4().hex
            memory = _Memory()
            _LIVE_MEMORY[token] = memory
            return cls(text, "memory", "", None, token, memory)
        if parsed.scheme == "s3":
            if not parsed.netloc:
                raise WorkloadError(f"data store URI {text!r} names no bucket (s3://bucket/prefix)")
            root = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
            endpoint = endpoint_override or os.environ.get("AWS_ENDPOINT_URL") or None
            return cls(text, "s3", root, endpoint)
        if parsed.scheme == "file":
            path = parsed.path
        elif parsed.scheme and len(parsed.scheme) > 1:  # "C:" is a drive, not a scheme
            raise WorkloadError(
                f"data store URI {text!r}: unsupported scheme {parsed.scheme!r} "
                "(use a folder path, file://, memory:// or s3://bucket/prefix)"
            )
        else:
            path = text
        return cls(text, "local", os.path.abspath(os.path.expanduser(path)))

    # -- pickling: URI and options only --------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fs"] = None
        state["_memory"] = None
        state["_pid"] = os.getpid()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        pid = state.pop("_pid", None)
        self.__dict__.update(state)
        if self.kind == "memory":
            # a forked child inherits a *copy* of the registry: writes there would be lost
            same = pid == os.getpid()
            self._memory = _LIVE_MEMORY.get(self._token) if same else None
            self.__dict__["_origin_pid"] = pid

    # -- the store ------------------------------------------------------------------------

    def put(self, key: str, obj: Any) -> str:
        """Pickle ``obj`` (protocol 5) under ``key``; return the key."""
        data = pickle.dumps(obj, protocol=5)
        path = self._path(key)
        if self.kind == "memory":
            memory = self._live()
            with memory.lock:
                memory.objects[key] = data
            return key
        fs = self.filesystem()
        try:
            if self.kind == "local":
                fs.create_dir(os.path.dirname(path), recursive=True)
                tmp = f"{path}.{uuid.uuid4().hex}.tmp"
                with fs.open_output_stream(tmp) as out:
                    out.write(data)
                fs.move(tmp, path)  # readers never see half an object
            else:
                with fs.open_output_stream(path) as out:
                    out.write(data)
        except OSError as err:
            raise WorkloadError(f"cannot write {key!r} to data store {self.uri}: {err}") from err
        return key

    def get(self, key: str) -> Any:
        """The object stored under ``key``; a missing key raises WorkloadError naming it."""
        path = self._path(key)
        if self.kind == "memory":
            memory = self._live()
            with memory.lock:
                data = memory.objects.get(key)
            if data is None:
                raise WorkloadError(f"no object {key!r} in data store {self.uri}")
            return pickle.loads(data)
        try:
            with self.filesystem().open_input_stream(path) as stream:
                data = stream.readall()
        except FileNotFoundError as err:
            raise WorkloadError(f"no object {key!r} in data store {self.uri}") from err
        except OSError as err:
            raise WorkloadError(f"cannot read {key!r} from data store {self.uri}: {err}") from err
        return pickle.loads(data)

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under ``prefix`` (a folder-like key; ``""`` = everything)."""
        if self.kind == "memory":
            memory = self._live()
            with memory.lock:
                for key in [k for k in memory.objects if _under(k, prefix)]:
                    del memory.objects[key]
            return
        path = self._path(prefix) if prefix else self.root
        fs = self.filesystem()
        try:
            if prefix:
                info = fs.get_file_info(path)
                if info.type.name == "File":
                    fs.delete_file(path)
                elif info.type.name == "Directory" or self.kind == "s3":
                    fs.delete_dir_contents(path, missing_dir_ok=True)
                    if info.type.name == "Directory":
                        fs.delete_dir(path)
            else:
                fs.delete_dir_contents(path, missing_dir_ok=True)
        except OSError as err:
            raise WorkloadError(
                f"cannot delete {prefix!r} from data store {self.uri}: {err}"
            ) from err

    def list_inputs(self, prefix: str = "") -> list[tuple[str, int]]:
        """``(key, bytes)`` of every file under ``prefix``, sorted by key: a user's input data.

        When the store's root (or ``root/prefix``) is itself a file, that one file is listed
        (with key ``prefix``, ``""`` for the root). Hidden files (``.name``) are skipped.
        """
        if self.kind == "memory":
            memory = self._live()
            with memory.lock:
                return sorted((k, len(v)) for k, v in memory.objects.items() if _under(k, prefix))
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
        """Raw bytes ``[start, start + length)`` of an input file (to EOF without ``length``)."""
        if self.kind == "memory":
            memory = self._live()
            with memory.lock:
                data = memory.objects.get(key)
            if data is None:
                raise WorkloadError(f"no object {key!r} in data store {self.uri}")
            return data[start:] if length is None else data[start:start + length]
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

    def check(self) -> None:
        """Fail fast with one WorkloadError line unless this store can be written and read.

        Checks, in order: the endpoint answers, the bucket (or folder) exists, and a tiny
        object can be put, read back and deleted. Uses short timeouts and no retries.
        """
        if self.kind == "memory":
            self._live()
            return
        if self.kind == "local":
            try:
                os.makedirs(self.root, exist_ok=True)
            except OSError as err:
                raise WorkloadError(f"data store {self.uri}: cannot create {self.root}: "
                                    f"{err.strerror or err}") from None
            fs = self.filesystem()
        else:
            fs = self._s3(CHECK_TIMEOUT_S, attempts=1)
            self._check_bucket(fs)
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
                                f"({_first_line(err)})") from None

    def _check_bucket(self, fs: Any) -> None:
        """Tell an unreachable endpoint, a missing bucket and denied access apart."""
        import pyarrow.fs as pafs

        bucket = self.root.split("/", 1)[0]
        where = self.endpoint_override or "AWS S3"
        try:
            info = fs.get_file_info(bucket)
        except OSError as err:
            text = str(err)
            if "curl" in text.lower() or "connect" in text.lower() or "timeout" in text.lower():
                raise WorkloadError(f"data store {self.uri}: cannot reach the S3 endpoint {where} "
                                    f"({_first_line(err)})") from None
            raise WorkloadError(f"data store {self.uri}: cannot access bucket {bucket!r} at "
                                f"{where} ({_first_line(err)})") from None
        if info.type == pafs.FileType.NotFound:
            raise WorkloadError(f"data store {self.uri}: bucket {bucket!r} does not exist at "
                                f"{where}")

    # -- helpers --------------------------------------------------------------------------

    def filesystem(self) -> Any:
        """The ``pyarrow.fs`` filesystem, created on first use in each process."""
        if self._fs is None:
            if self.kind == "local":
                import pyarrow.fs as pafs

                self._fs = pafs.LocalFileSystem()
            elif self.kind == "s3":
                self._fs = self._s3(_TIMEOUT_S, attempts=3)
            else:
                raise WorkloadError(f"data store {self.uri} has no filesystem")
        return self._fs

    def _s3(self, timeout_s: float, attempts: int) -> Any:
        import pyarrow.fs as pafs

        scheme, endpoint = "https", None
        if self.endpoint_override:
            parsed = urlparse(self.endpoint_override if "://" in self.endpoint_override
                              else f"https://{self.endpoint_override}")
            scheme, endpoint = parsed.scheme or "https", parsed.netloc or parsed.path
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        return pafs.S3FileSystem(
            endpoint_override=endpoint,
            scheme=scheme,
            region=region or "us-east-1",
            connect_timeout=timeout_s,
            request_timeout=timeout_s,
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=attempts),
            # one PutObject per small object instead of a 3-request multipart upload; write
            # errors then surface at close, which put() and check() still catch
            allow_delayed_open=True,
        )

    def _path(self, key: str) -> str:
        parts = key.split("/")
        if key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise WorkloadError(f"data store key {key!r} must be a relative path without "
                                "empty, '.' or '..' parts")
        return f"{self.root}/{key}" if self.root else key

    def _live(self) -> _Memory:
        if self._memory is None:
            origin = self.__dict__.get("_origin_pid")
            raise WorkloadError(
                f"memory:// data store from process {origin} is not available in process "
                f"{os.getpid()}: it lives in one process only; use a folder or s3:// instead"
            )
        return self._memory


def _under(key: str, prefix: str) -> bool:
    return not prefix or key == prefix or key.startswith(prefix.rstrip("/") + "/")


def _first_line(err: BaseException) -> str:
    """The first line of an error, so a multi-line AWS SDK message stays one line."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
