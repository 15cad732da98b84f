"""The metadata and artifact stores of a Sematic server, over its HTTP API.

``open_http_stores(url, api_key)`` gives both, sharing one pooled connection;
``HttpLogs`` sends run logs to the server. The format both sides speak is
``sematic.core.wire``.
"""

from __future__ import annotations

from sematic.core.errors import StoreError
from sematic.core.wire import MAX_LOG_BYTES
from sematic.storage.http._connection import HttpConnection
from sematic.storage.http.artifacts import HttpArtifactStore
from sematic.storage.http.metadata import HttpMetadataStore

__all__ = [
    "HttpArtifactStore",
    "HttpConnection",
    "HttpLogs",
    "HttpMetadataStore",
    "open_http_stores",
]


class HttpLogs:
    """Run logs sent to the server (``PUT /api/v1/runs/ID/logs``), for runs that ran
    where the server cannot read their log (a pod, another machine)."""

    def __init__(self, url: str, api_key: str | None = None) -> None:
        self._http = HttpConnection(url, api_key)

    def put(self, run_id: str, data: bytes) -> None:
        """Store ``data`` as the run's log; a log too long keeps its end."""
        if len(data) > MAX_LOG_BYTES:
            data = b"[... the beginning was cut]\n" + data[-(MAX_LOG_BYTES - 64) :]
        self._http.request(
            "PUT",
            f"/runs/{run_id}/logs",
            doing=f"store the log of run {run_id}",
            idempotent=True,
            content=data,
            headers={"Content-Type": "application/octet-stream"},  # bytes, kept as sent
        )

    def get(self, run_id: str) -> bytes | None:
        """The run's log as the server keeps it (None: it has none)."""
        try:
            response = self._http.request(
                "GET", f"/runs/{run_id}/logs", doing=f"read the log of run {run_id}",
                idempotent=True, errors={404: _NoLogError},
            )  # fmt: skip
        except _NoLogError:
            return None
        return response.content

    def close(self) -> None:
        self._http.close()


class _NoLogError(StoreError):
    """The server has no log for this run (yet)."""


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
