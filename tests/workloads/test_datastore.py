"""DataStore: one contract every backend passes, pickling into workers, and fail-fast checks."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import socket
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from workloads import DataStore, S3Store, WorkloadError, _s3_store


class DataStoreContract:
    """What every backend must do (:class:`workloads.DataStore`'s docstring); each backend's
    tests subclass it with a ``store`` fixture returning an empty store."""

    kind = ""

    def test_from_uri_picks_the_backend(self, store):
        assert isinstance(store, DataStore) and store.kind == self.kind

    def test_round_trip(self, store):
        """put/get/list/delete semantics every backend must share."""
        value = {"array": np.arange(5), "text": "héllo", "nested": [1, (2, 3)]}
        assert store.put("run/a/00000.pkl", value) == "run/a/00000.pkl"
        store.put("run/a/00001.pkl", 1)
        store.put("run/b/00000.pkl", 2)
        store.put("other/x.pkl", 3)
        back = store.get("run/a/00000.pkl")
        assert back["text"] == "héllo" and back["nested"] == [1, (2, 3)]
        np.testing.assert_array_equal(back["array"], np.arange(5))
        store.put("run/a/00001.pkl", "overwritten")
        assert store.get("run/a/00001.pkl") == "overwritten"
        keys = [key for key, _ in store.list_inputs("run")]
        assert keys == ["run/a/00000.pkl", "run/a/00001.pkl", "run/b/00000.pkl"]
        store.delete_prefix("run/a")
        assert [key for key, _ in store.list_inputs("run")] == ["run/b/00000.pkl"]
        with pytest.raises(WorkloadError, match="no object 'run/a/00000.pkl'"):
            store.get("run/a/00000.pkl")
        store.delete_prefix("run")
        store.delete_prefix("run")  # deleting nothing is fine
        assert store.get("other/x.pkl") == 3
        store.delete_prefix("")
        with pytest.raises(WorkloadError):
            store.get("other/x.pkl")

    def test_a_missing_key_is_named(self, store):
        with pytest.raises(WorkloadError, match="no object 'nothing/here.pkl'"):
            store.get("nothing/here.pkl")

    @pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a/./b", ""])
    def test_keys_must_be_plain_relative_paths(self, store, key):
        with pytest.raises(WorkloadError, match="relative path"):
            store.put(key, 1)

    def test_read_bytes_of_a_stored_object(self, store):
        store.put("blob.pkl", b"0123456789")
        raw = store.read_bytes("blob.pkl")
        assert pickle.loads(raw) == b"0123456789"
        assert store.read_bytes("blob.pkl", 2, 3) == raw[2:5]
        assert store.read_bytes("blob.pkl", len(raw) - 2) == raw[-2:]

    def test_check_passes_and_leaves_nothing(self, store):
        store.check()
        assert [key for key, _ in store.list_inputs("")] == []

    def test_pickled_copy_is_equal_and_reads_the_same_objects(self, store):
        store.put("a.pkl", {"x": 1})
        copy = pickle.loads(pickle.dumps(store))
        assert copy == store
        assert copy.get("a.pkl") == {"x": 1}


class TestMemoryStore(DataStoreContract):
    kind = "memory"

    @pytest.fixture
    def store(self):
        return DataStore.from_uri("memory://")


class TestFolderStore(DataStoreContract):
    kind = "local"

    @pytest.fixture
    def store(self, tmp_path):
        return DataStore.from_uri(tmp_path / "store")

    def test_writes_leave_no_temporary_files(self, store, tmp_path):
        store.put("a/b.pkl", 1)
        store.put("a/b.pkl", 2)
        assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))


class TestS3Store(DataStoreContract):
    kind = "s3"

    @pytest.fixture
    def store(self, s3):
        return DataStore.from_uri(s3.uri(f"contract-{uuid.uuid4().hex}"))

    def test_endpoint_comes_from_the_environment(self, s3):
        assert DataStore.from_uri(s3.uri("env")).endpoint_override == s3.endpoint


def test_file_uri_and_default_temp_folder(tmp_path):
    store = DataStore.from_uri(f"file://{tmp_path}")
    assert store.root == str(tmp_path)
    store.put("k.pkl", 42)
    assert (tmp_path / "k.pkl").is_file()
    temp = DataStore.from_uri()
    try:
        assert os.path.isdir(temp.root)
        assert os.path.dirname(temp.root) == tempfile.gettempdir()
        temp.put("k.pkl", 1)
        temp.delete_prefix("")
    finally:
        os.rmdir(temp.root)


def test_s3_endpoint_argument_beats_environment(s3, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    store = DataStore.from_uri(s3.uri("arg"), endpoint_override=s3.endpoint)
    store.put("x.pkl", [1])
    assert store.get("x.pkl") == [1]


def _get_in_worker(store: DataStore, key: str):
    return store.get(key)


def _get_memory_in_worker(store: DataStore, key: str) -> str:
    try:
        store.get(key)
    except WorkloadError as err:
        return str(err)
    return "no error"


def test_folder_store_pickles_into_another_process(tmp_path):
    store = DataStore.from_uri(tmp_path)
    store.filesystem()  # a live filesystem must not travel: the copy makes its own
    store.put("a.pkl", {"x": 1})
    copy = pickle.loads(pickle.dumps(store))
    assert copy == store and copy.filesystem() is not store.filesystem()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        assert pool.submit(_get_in_worker, store, "a.pkl").result() == {"x": 1}


def test_memory_store_works_in_process_and_refuses_elsewhere():
    store = DataStore.from_uri("memory://")
    store.put("a.pkl", 7)
    assert pickle.loads(pickle.dumps(store)).get("a.pkl") == 7  # same process: same objects
    ctx = multiprocessing.get_context("fork")  # a forked child even has a copy of the registry
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        message = pool.submit(_get_memory_in_worker, store, "a.pkl").result()
    assert "memory:// data store" in message and "one process" in message


@pytest.mark.parametrize(
    ("uri", "message"),
    [("s3://", "names no bucket"), ("ftp://host/x", "unsupported scheme 'ftp'")],
)
def test_bad_uris(uri, message):
    with pytest.raises(WorkloadError, match=message):
        DataStore.from_uri(uri)


def test_list_inputs_and_read_bytes(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a.txt").write_bytes(b"hello world")
    (tmp_path / "b" / "c.txt").write_bytes(b"xyz")
    (tmp_path / ".hidden").write_bytes(b"skip me")
    store = DataStore.from_uri(tmp_path)
    assert store.list_inputs() == [("a.txt", 11), ("b/c.txt", 3)]
    assert store.read_bytes("a.txt", 6, 3) == b"wor"
    assert store.read_bytes("a.txt", 6) == b"world"
    assert store.read_bytes("a.txt", 9, 100) == b"ld"
    single = DataStore.from_uri(tmp_path / "a.txt")  # a file is an input of one
    assert single.list_inputs() == [("", 11)]
    assert single.read_bytes("", 0, 5) == b"hello"
    with pytest.raises(WorkloadError, match="not found"):
        DataStore.from_uri(tmp_path / "missing").list_inputs()


def test_check_creates_a_missing_folder_and_cleans_up(tmp_path):
    DataStore.from_uri(tmp_path / "new" / "folder").check()
    assert (tmp_path / "new" / "folder").is_dir()
    assert list((tmp_path / "new" / "folder").iterdir()) == []  # the probe is cleaned up


def test_check_local_folder_that_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(WorkloadError) as err:
        DataStore.from_uri(tmp_path / "file" / "sub").check()
    assert "cannot create" in str(err.value) and "\n" not in str(err.value)


def test_check_missing_bucket(s3):
    with pytest.raises(WorkloadError) as err:
        DataStore.from_uri("s3://no-such-bucket/x").check()
    message = str(err.value)
    assert "bucket 'no-such-bucket' does not exist" in message and "\n" not in message


def test_check_unreachable_endpoint_fails_fast(s3):
    with socket.socket() as sock:  # a port that is certainly closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(WorkloadError) as err:
        DataStore.from_uri("s3://bucket/x", endpoint_override=f"http://127.0.0.1:{port}").check()
    assert time.monotonic() - start < 30
    message = str(err.value)
    assert "cannot reach the S3 endpoint" in message and "\n" not in message


def test_check_silent_endpoint_times_out(s3, monkeypatch):
    """An endpoint that accepts connections and never answers must not hang the command."""
    monkeypatch.setattr(_s3_store, "CHECK_TIMEOUT_S", 1.0)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(WorkloadError, match="cannot reach the S3 endpoint"):
            DataStore.from_uri("s3://bucket/x", endpoint_override=endpoint).check()
        assert time.monotonic() - start < 30


class _DenyWrites:
    """A real S3 filesystem whose writes are refused, as with a read-only IAM policy."""

    def __init__(self, fs):
        self._fs = fs

    def __getattr__(self, name):
        return getattr(self._fs, name)

    def open_output_stream(self, path, *args, **kwargs):
        raise OSError(f"When uploading '{path}': AWS Error ACCESS_DENIED during PutObject "
                      "operation: Access Denied\nsecond line of detail")


def test_check_without_write_permission(s3, monkeypatch):
    real = S3Store.connect
    monkeypatch.setattr(S3Store, "connect", lambda self, *a, **k: _DenyWrites(real(self, *a, **k)))
    with pytest.raises(WorkloadError) as err:
        DataStore.from_uri(s3.uri("readonly")).check()
    message = str(err.value)
    assert message.startswith(f"data store {s3.uri('readonly')}: cannot write to it (")
    assert "Access Denied" in message and "\n" not in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to read-only folders")
def test_check_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(WorkloadError, match="cannot write to it"):
            DataStore.from_uri(folder).check()
    finally:
        folder.chmod(0o700)
