"""LocalResolver fixtures: a private SEMATIC_HOME and a way to read what was recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from sematic.core.records import RunRecord
from sematic.resolvers.settings import LocalSettings
from sematic.storage.sql import SqlMetadataStore


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEMATIC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SEMATIC_DATABASE_URL", raising=False)
    monkeypatch.delenv("SEMATIC_ARTIFACT_URL", raising=False)
    return tmp_path / "home"


def store() -> SqlMetadataStore:
    """The metadata store LocalResolver writes to, per the environment."""
    return SqlMetadataStore(LocalSettings.from_environment().database_url)


def recorded_runs(root_id: str) -> list[RunRecord]:
    with store() as metadata:
        return metadata.runs_of_root(root_id)
