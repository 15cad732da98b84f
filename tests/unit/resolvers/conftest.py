"""LocalResolver fixtures: a private SEMATIC_HOME and a way to read what was recorded."""

from __future__ import annotations

from sematic.core.records import RunRecord
from sematic.resolvers.settings import LocalSettings
from sematic.storage.sql import SqlMetadataStore


def store() -> SqlMetadataStore:
    """The metadata store LocalResolver writes to, per the environment."""
    return SqlMetadataStore(LocalSettings.from_environment().database_url)


def recorded_runs(root_id: str) -> list[RunRecord]:
    with store() as metadata:
        return metadata.runs_of_root(root_id)
