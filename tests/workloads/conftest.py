"""Fixtures for the workload tests: a private corpus cache shared by the whole session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """One cache directory per session, so the synthetic corpus is generated once."""
    return tmp_path_factory.mktemp("rayjoule-cache")


@pytest.fixture(autouse=True)
def _private_cache(cache_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never write to the user's ~/.cache while testing."""
    monkeypatch.setenv("RAYJOULE_CACHE", str(cache_dir))
