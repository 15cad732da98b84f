"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

import sematic
from tests.postgres import postgres_server, postgres_url

__all__ = ["home", "postgres_server", "postgres_url", "silent"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private SEMATIC_HOME, with the database and artifact locations derived from it."""
    monkeypatch.setenv("SEMATIC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SEMATIC_DATABASE_URL", raising=False)
    monkeypatch.delenv("SEMATIC_ARTIFACT_URL", raising=False)
    return tmp_path / "home"


@pytest.fixture
def silent() -> sematic.SilentResolver:
    return sematic.SilentResolver()
