"""The S3-compatible data store (AWS S3, MinIO, moto), through ``pyarrow.fs``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from workloads._base import WorkloadError
from workloads._datastore import first_line
from workloads._filesystem_store import FileSystemStore

CHECK_TIMEOUT_S = 3.0
"""Connect and request timeout for :meth:`S3Store.check`: an unreachable endpoint must fail
in seconds, not after the AWS SDK's minutes of retries."""

_TIMEOUT_S = 30.0
"""Connect and request timeout for ordinary reads and writes of stage outputs."""


@dataclass
class S3Store(FileSystemStore):
    """Objects under ``bucket/prefix`` (``root``) at ``endpoint_override`` (AWS when None);
    credentials from the usual AWS environment variables of each process."""

    kind = "s3"
    endpoint_override: str | None = None
    _real_folders = False

    def _connect(self) -> Any:
        return self.connect(_TIMEOUT_S, attempts=3)

    def connect(self, timeout_s: float, attempts: int) -> Any:
        """A new ``pyarrow.fs.S3FileSystem`` with these timeouts and retries."""
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

    def check(self) -> None:
        """The endpoint answers, the bucket exists, and a tiny object can be put, read back
        and deleted. Uses short timeouts and no retries."""
        fs = self.connect(CHECK_TIMEOUT_S, attempts=1)
        self._check_bucket(fs)
        self._probe(fs)

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
                                    f"({first_line(err)})") from None
            raise WorkloadError(f"data store {self.uri}: cannot access bucket {bucket!r} at "
                                f"{where} ({first_line(err)})") from None
        if info.type == pafs.FileType.NotFound:
            raise WorkloadError(f"data store {self.uri}: bucket {bucket!r} does not exist at "
                                f"{where}")
