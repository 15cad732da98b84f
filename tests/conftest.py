"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

import sematic
from tests.harness.postgres import postgres_server, postgres_url
from tests.harness.s3 import s3_server, s3_url

# Registered here once: a session fixture imported into two modules would start twice.
__all__ = ["home", "postgres_server", "postgres_url", "s3_server", "s3_url", "silent"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private SEMATIC_HOME, with the database and artifact locations derived from it."""
    monkeypatch.setenv("SEMATIC_HOME", str(tmp_path / "home"))
    for variable in (
        "SEMATIC_DATABASE_URL",
        "SEMATIC_ARTIFACT_URL",
        "SEMATIC_SERVER_URL",
        "SEMATIC_API_KEY",
    ):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path / "home"


@pytest.fixture
def silent() -> sematic.SilentResolver:
    return sematic.SilentResolver()
