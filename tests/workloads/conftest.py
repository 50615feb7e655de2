"""Fixtures for the workload tests: a private corpus cache shared by the whole session, and
an S3-compatible server (moto) for the data-store tests."""

from __future__ import annotations

import dataclasses

import pytest


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """One cache directory per session, so the synthetic corpus is generated once."""
    return tmp_path_factory.mktemp("rayjoule-cache")


@pytest.fixture(autouse=True)
def _private_cache(cache_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never write to the user's ~/.cache while testing."""
    monkeypatch.setenv("RAYJOULE_CACHE", str(cache_dir))


@dataclasses.dataclass(frozen=True)
class S3Server:
    """A running S3-compatible endpoint and a bucket that exists on it."""

    endpoint: str
    bucket: str
    access_key: str = "testing"
    secret_key: str = "testing"

    def uri(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"


@pytest.fixture(scope="session")
def s3_server():
    """moto's threaded S3 server on a free localhost port, with one bucket, for the session.

    Session-scoped because starting it costs about a second; tests that need credentials in
    the environment use the function-scoped ``s3`` fixture, so nothing leaks between tests.
    """
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        info = S3Server(f"http://{host}:{port}", "rayjoule-test")
        client = boto3.client("s3", endpoint_url=info.endpoint, region_name="us-east-1",
                              aws_access_key_id=info.access_key,
                              aws_secret_access_key=info.secret_key)
        client.create_bucket(Bucket=info.bucket)
        yield info
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The session's S3 server, with its credentials and endpoint in this test's environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server
