"""Reading the ``comments`` column of review tables (CSV or Parquet) from a path or URI.

Any location pyarrow's filesystems open works: a local path, ``file://``, ``s3://bucket/key``
(with ``?endpoint_override=http://minio:9000`` and the usual AWS variables for MinIO),
``gs://``, ``hdfs://``. Files ending in ``.csv`` (optionally ``.gz``/``.bz2``/``.zst``) are
CSV with quoted newlines allowed (Inside Airbnb's ``reviews.csv``); anything else is Parquet.

Parquet is read by row group, so a task touches only the groups that overlap its rows;
CSV has no index, so a task streams the file from the top up to its last row (prefer Parquet
for big inputs). Every failure a user can fix becomes a :class:`WorkloadError`.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from workloads._base import WorkloadError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

COLUMN = "comments"
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst")


def open_location(uri: str) -> tuple[pafs.FileSystem, str]:
    """Resolve ``uri`` to (filesystem, path) and check that the file exists."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    try:
        if "://" in uri:
            fs, path = pafs.FileSystem.from_uri(uri)
        else:
            fs, path = pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(uri))
        info = fs.get_file_info(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise WorkloadError(f"cannot open review data {uri!r}: {exc}") from None
    if info.type == pafs.FileType.NotFound:
        raise WorkloadError(f"review data file not found: {uri}")
    if info.type != pafs.FileType.File:
        raise WorkloadError(f"review data {uri!r} is not a file")
    return fs, path


def is_csv(path: str) -> bool:
    """CSV by file name; everything else is read as Parquet."""
    return path.lower().endswith(_CSV_SUFFIXES)


def count_rows(uri: str) -> int:
    """Number of reviews in the file, after checking it exists and has a ``comments`` column."""
    fs, path = open_location(uri)
    info = fs.get_file_info(path)
    return _count_rows_cached(uri, info.mtime_ns, info.size)


@functools.lru_cache(maxsize=32)
def _count_rows_cached(uri: str, mtime_ns: int | None, size: int | None) -> int:
    """Row count keyed by the file's identity, so a changed file is counted again."""
    fs, path = open_location(uri)
    if is_csv(path):
        return sum(batch.num_rows for batch in _csv_batches(fs, path, uri))
    with _guard(uri, "Parquet"), fs.open_input_file(path) as handle:
        parquet = _parquet_file(handle, uri)
        return parquet.metadata.num_rows


def read_comments(uri: str, start: int, stop: int) -> list[str | None]:
    """The ``comments`` of rows ``[start, stop)``; None where a review has no text."""
    if stop <= start:
        return []
    fs, path = open_location(uri)
    read_rows = _read_csv_rows if is_csv(path) else _read_parquet_rows
    column = read_rows(fs, path, uri, start, stop)
    if len(column) != stop - start:
        raise WorkloadError(f"review data {uri!r} has fewer than {stop} rows")
    return _as_text(column, uri).to_pylist()


def _read_parquet_rows(fs: pafs.FileSystem, path: str, uri: str, start: int,
                       stop: int) -> pa.ChunkedArray:
    """Read only the row groups that overlap ``[start, stop)``, then slice."""
    with _guard(uri, "Parquet"), fs.open_input_file(path) as handle:
        parquet = _parquet_file(handle, uri)
        groups, first_row, offset = [], None, 0
        for group in range(parquet.metadata.num_row_groups):
            rows = parquet.metadata.row_group(group).num_rows
            if offset < stop and offset + rows > start:
                groups.append(group)
                first_row = offset if first_row is None else first_row
            offset += rows
        if not groups:
            return _empty_column()
        table = parquet.read_row_groups(groups, columns=[COLUMN])
        return table.column(COLUMN).slice(start - (first_row or 0), stop - start)


def _read_csv_rows(fs: pafs.FileSystem, path: str, uri: str, start: int,
                   stop: int) -> pa.ChunkedArray:
    """Stream CSV batches, keeping rows ``[start, stop)`` and stopping after them."""
    import pyarrow as pa

    pieces, offset = [], 0
    for batch in _csv_batches(fs, path, uri):
        rows = batch.num_rows
        if offset + rows > start:
            lo = max(0, start - offset)
            pieces.append(batch.column(0).slice(lo, min(rows, stop - offset) - lo))
        offset += rows
        if offset >= stop:
            break
    return pa.chunked_array(pieces, type=pa.string()) if pieces else _empty_column()


def _csv_batches(fs: pafs.FileSystem, path: str, uri: str) -> Iterator[pa.RecordBatch]:
    """Yield record batches holding only the ``comments`` column (as strings)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with _guard(uri, "CSV"), fs.open_input_stream(path) as stream:
        try:
            reader = pacsv.open_csv(
                stream,
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    include_columns=[COLUMN], column_types={COLUMN: pa.string()}
                ),
            )
        except KeyError:  # pyarrow.ArrowKeyError: the header lacks the column
            raise WorkloadError(f"review data {uri!r} has no {COLUMN!r} column") from None
        yield from reader


def _parquet_file(handle: Any, uri: str) -> Any:
    """Open a Parquet file and check for the ``comments`` column."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(handle)
    if COLUMN not in parquet.schema_arrow.names:
        raise WorkloadError(f"review data {uri!r} has no {COLUMN!r} column")
    return parquet


def _as_text(column: pa.ChunkedArray, uri: str) -> pa.ChunkedArray:
    """Comments as strings, whatever string-like type the file stored them as."""
    import pyarrow as pa

    try:
        return column.cast(pa.string())
    except pa.ArrowException as exc:
        raise WorkloadError(f"review data {uri!r}: {COLUMN!r} is not text: {exc}") from None


def _empty_column() -> pa.ChunkedArray:
    import pyarrow as pa

    return pa.chunked_array([], type=pa.string())


@contextlib.contextmanager
def _guard(uri: str, kind: str) -> Iterator[None]:
    """Turn pyarrow's read and parse errors into WorkloadError naming the file and format."""
    import pyarrow as pa

    try:
        yield
    except (pa.ArrowException, OSError) as exc:
        raise WorkloadError(f"cannot read {uri!r} as {kind}: {exc}") from None
