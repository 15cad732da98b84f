"""Which stores a resolver and its workers use: the one place that chooses.

With a ``server_url`` (``SEMATIC_SERVER_URL`` or ``sematic settings set server_url``),
runs and payloads go through that Sematic server's API; otherwise straight to the
database and the artifact store, the small payloads packed in that database
(``sematic.storage.packed``; a worker on this machine gets the database's URL for that).
Adapters are imported on use: a worker that talks to a server never imports SQLAlchemy.

A ``webhook`` in the settings wraps the database's store in a ``WebhookStore`` (state
changes posted to it); never the server's API: the server notifies, once, for every client.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sematic.core.ports import ArtifactStore, MetadataStore

if TYPE_CHECKING:  # a worker needs no settings: importing them costs it some 10 ms
    from sematic.resolvers.settings import LocalSettings

__all__ = ["open_stores", "worker_artifact_store"]


def open_stores(settings: LocalSettings) -> tuple[MetadataStore, ArtifactStore]:
    """The metadata and artifact stores ``settings`` point at. The caller closes the first."""
    if settings.server_url:
        from sematic.storage.http import open_http_stores

        return open_http_stores(settings.server_url, settings.api_key)
    from sematic.storage.artifacts import FsspecArtifactStore
    from sematic.storage.packed import PackedArtifactStore
    from sematic.storage.sql import SqlMetadataStore

    webhook = settings.webhook  # checked before the database is opened
    database = SqlMetadataStore(settings.database_url)
    try:
        artifacts = PackedArtifactStore(
            FsspecArtifactStore(settings.artifact_url),
            database.small_payloads(),
            settings.small_payload_bytes,
        )
    except BaseException:
        database.close()
        raise
    metadata: MetadataStore = database
    if webhook is not None:
        from sematic.storage.webhooks import WebhookStore

        metadata = WebhookStore(metadata, webhook)
    return metadata, artifacts


@contextmanager
def worker_artifact_store(
    *,
    artifact_url: str,
    server_url: str | None,
    api_key: str | None,
    database_url: str | None = None,
    small_payload_bytes: int = 0,
) -> Iterator[ArtifactStore]:
    """The artifact store of a worker: its job's server if it names one; else the URL,
    with the small payloads packed in the database at ``database_url`` (the resolver's:
    it packs the inputs; without it, only unpacked payloads are read)."""
    if server_url:
        from sematic.storage.http import HttpArtifactStore

        with HttpArtifactStore(server_url, api_key) as store:
            yield store
        return
    from sematic.storage.artifacts import FsspecArtifactStore

    if not database_url:
        yield FsspecArtifactStore(artifact_url)
        return
    from sematic.storage.packed import PackedArtifactStore
    from sematic.storage.sqlite_payloads import SqliteSmallPayloads, sqlite_path

    large = FsspecArtifactStore(artifact_url)
    path = sqlite_path(database_url)
    if path is not None:  # the standard library's sqlite3: no SQLAlchemy to import
        lite = SqliteSmallPayloads(path)
        try:
            yield PackedArtifactStore(large, lite, small_payload_bytes)
        finally:
            lite.close()
        return
    from sematic.storage.sql import SqlMetadataStore

    with SqlMetadataStore(database_url) as database:
        yield PackedArtifactStore(large, database.small_payloads(), small_payload_bytes)
