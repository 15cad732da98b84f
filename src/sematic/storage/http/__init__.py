"""The metadata and artifact stores of a Sematic server, over its HTTP API.

``open_http_stores(url, api_key)`` gives both, sharing one pooled connection;
``HttpLogs`` sends run logs to the server (whole, or appended to while the run runs).
The format both sides speak is ``sematic.core.wire``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sematic.core.errors import StoreError
from sematic.core.wire import MAX_LOG_BYTES
from sematic.storage.http._connection import HttpConnection
from sematic.storage.http._httpx import httpx
from sematic.storage.http.artifacts import HttpArtifactStore
from sematic.storage.http.metadata import HttpMetadataStore

LOG_SIZE_HEADER = "X-Log-Size"  # the server's ``LOG_SIZE_HEADER``

__all__ = [
    "HttpArtifactStore",
    "HttpConnection",
    "HttpLogs",
    "HttpMetadataStore",
    "LogChunk",
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

    def append(self, run_id: str, offset: int, data: bytes) -> int:
        """Append ``data`` to the run's log if the server holds ``offset`` bytes of it;
        return the size the server holds afterwards. Anything but ``offset + len(data)``
        means nothing was appended (the server's log is not where the caller thinks: it
        may append at the size returned). A chunk sent again (a retry after a lost answer)
        is kept once."""
        try:
            response = self._http.request(
                "PUT", f"/runs/{run_id}/logs", doing=f"append to the log of run {run_id}",
                idempotent=True, params={"offset": offset}, content=data,
                headers={"Content-Type": "application/octet-stream"},
                errors={409: _OffsetConflictError},
            )  # fmt: skip
        except _OffsetConflictError:
            chunk = self.read(run_id, offset)
            return 0 if chunk is None else chunk.size
        return _size_of(response)

    def get(self, run_id: str, offset: int = 0) -> bytes | None:
        """The run's log as the server keeps it, from byte ``offset`` on (None: it has
        none)."""
        if offset == 0:
            try:
                response = self._http.request(
                    "GET", f"/runs/{run_id}/logs", doing=f"read the log of run {run_id}",
                    idempotent=True, errors={404: _NoLogError},
                )  # fmt: skip
            except _NoLogError:
                return None
            return response.content
        chunk = self.read(run_id, offset)
        return None if chunk is None else chunk.data

    def read(self, run_id: str, offset: int) -> LogChunk | None:
        """What follows the first ``offset`` bytes of the run's log, and its whole size
        (None: the server has no log for it)."""
        try:
            response = self._http.request(
                "GET", f"/runs/{run_id}/logs", doing=f"read the log of run {run_id}",
                idempotent=True, params={"offset": offset}, errors={404: _NoLogError},
            )  # fmt: skip
        except _NoLogError:
            return None
        return LogChunk(response.content, _size_of(response, offset + len(response.content)))

    def close(self) -> None:
        self._http.close()


class _NoLogError(StoreError):
    """The server has no log for this run (yet)."""


class _OffsetConflictError(StoreError):
    """The server's log of the run does not end where the append said."""


@dataclass(frozen=True, slots=True)
class LogChunk:
    """Part of a run's log: ``data`` follows the offset asked for; ``size`` is the log's
    whole size on the server (smaller than that offset: the log was replaced)."""

    data: bytes
    size: int


def _size_of(response: httpx.Response, default: int = 0) -> int:
    raw = response.headers.get(LOG_SIZE_HEADER, "")
    return int(raw) if raw.isascii() and raw.isdigit() else default


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
