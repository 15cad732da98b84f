"""The metadata and artifact stores of a Sematic server, over its HTTP API.

``open_http_stores(url, api_key)`` gives both, sharing one pooled connection.
"""

from __future__ import annotations

from sematic.storage.http._connection import HttpConnection
from sematic.storage.http.artifacts import HttpArtifactStore
from sematic.storage.http.metadata import HttpMetadataStore

__all__ = ["HttpArtifactStore", "HttpConnection", "HttpMetadataStore", "open_http_stores"]


def open_http_stores(
    url: str, api_key: str | None = None
) -> tuple[HttpMetadataStore, HttpArtifactStore]:
    """Both stores of the server at ``url``, on one connection pool.

    Closing either closes the pool; the other opens it again if it is used afterwards.
    """
    connection = HttpConnection(url, api_key)
    return (
        HttpMetadataStore(url, connection=connection),
        HttpArtifactStore(url, connection=connection),
    )
