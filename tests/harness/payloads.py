"""What an artifact store holds, packed values included: tests that look at the payloads a
resolver or a server stored read them as Sematic does, the small ones from the database's
``small_payloads`` table (``sematic.storage.packed``), the others from their files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sematic.storage.artifacts import FsspecArtifactStore
from sematic.storage.packed import PackedArtifactStore
from sematic.storage.sql import SqlMetadataStore


@contextmanager
def stored_payloads(database_url: str, artifact_url: str) -> Iterator[PackedArtifactStore]:
    """The payloads of that database and artifact store (only read: it packs nothing)."""
    with SqlMetadataStore(database_url) as database:
        yield PackedArtifactStore(FsspecArtifactStore(artifact_url), database.small_payloads(), 0)
