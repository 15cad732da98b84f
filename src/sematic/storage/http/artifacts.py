"""``ArtifactStore`` over the HTTP API: payloads go to, and come from, the server's store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote

from sematic.core import wire
from sematic.core.errors import (
    ArtifactCorruptedError,
    ArtifactMissingError,
    ConfigurationError,
)
from sematic.core.records import ARTIFACT_ID
from sematic.storage.http._connection import HttpConnection

if TYPE_CHECKING:
    from sematic.core.ports import ArtifactStore

BATCH_BYTES = 16 * 1024 * 1024  # payloads per upload request, at most


class HttpArtifactStore:
    """Payloads kept in the artifact store of a Sematic server.

    ``put`` uploads (``PUT /api/v1/artifacts/ID/payload``) with the type key the id was
    computed from: the server checks the payload against its id before storing it, so it
    needs the key. ``put_many`` sends many in one request (``POST /api/v1/payloads``).
    Neither asks first whether the server has the payload: it would answer yes for a damaged
    copy, which the upload replaces (how a recomputed output heals the server's store).
    ``get`` and ``exists`` read the server's store directly
    (``GET``/``HEAD /api/v1/payloads/ID``), also before the artifact is recorded.
    """

    def __init__(
        self, url: str, api_key: str | None = None, *, connection: HttpConnection | None = None
    ) -> None:
        self._http = connection or HttpConnection(url, api_key)
        self.url = self._http.url

    def __repr__(self) -> str:
        return f"HttpArtifactStore({self.url!r})"

    def __enter__(self) -> HttpArtifactStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def put(self, artifact_id: str, payload: bytes, *, type_key: str | None = None) -> None:
        self._check(artifact_id)
        if type_key is None:
            raise ConfigurationError(
                f"cannot upload artifact {artifact_id} to the Sematic server at {self.url} "
                "without the type key its id was computed from (put(..., type_key=...))"
            )

        def refused(detail: str) -> ArtifactCorruptedError:
            return ArtifactCorruptedError(
                f"the Sematic server at {self.url} refused the payload of artifact "
                f"{artifact_id}: {detail}"
            )

        self._http.request(
            "PUT",
            f"/artifacts/{artifact_id}/payload",
            doing=f"store artifact {artifact_id}",
            idempotent=True,  # content-addressed: the same bytes under the same id
            content=payload,
            headers={
                "Content-Type": "application/octet-stream",
                wire.TYPE_KEY_HEADER: quote(type_key, safe=""),
            },
            errors={400: refused},
        )

    def put_many(
        self, payloads: Mapping[str, bytes], *, type_keys: Mapping[str, str] | None = None
    ) -> None:
        """All of them in as few requests as possible (``POST /api/v1/payloads``, up to
        ``BATCH_BYTES`` each); a payload larger than that goes alone (``put``)."""
        type_keys = type_keys or {}
        batch: list[tuple[str, str, bytes]] = []
        size = 0
        for artifact_id, payload in payloads.items():
            type_key = type_keys.get(artifact_id)
            if len(payload) > BATCH_BYTES or type_key is None:
                self.put(artifact_id, payload, type_key=type_key)
                continue
            if batch and size + len(payload) > BATCH_BYTES:
                self._send(batch)
                batch, size = [], 0
            self._check(artifact_id)
            batch.append((artifact_id, type_key, payload))
            size += len(payload)
        if len(batch) == 1:
            artifact_id, type_key, payload = batch[0]
            self.put(artifact_id, payload, type_key=type_key)
        elif batch:
            self._send(batch)

    def _send(self, batch: list[tuple[str, str, bytes]]) -> None:
        def refused(detail: str) -> ArtifactCorruptedError:
            return ArtifactCorruptedError(
                f"the Sematic server at {self.url} refused {len(batch)} payloads: {detail}"
            )

        self._http.request(
            "POST",
            "/payloads",
            doing=f"store {len(batch)} artifacts",
            idempotent=True,  # content-addressed
            content=wire.payload_batch(batch),
            headers={"Content-Type": wire.PAYLOADS_TYPE},
            errors={400: refused},
        )

    def get(self, artifact_id: str) -> bytes:
        if not ARTIFACT_ID.fullmatch(artifact_id):
            raise self._missing(artifact_id)
        response = self._http.request(
            "GET",
            f"/payloads/{artifact_id}",
            doing=f"read artifact {artifact_id}",
            idempotent=True,
            errors={404: lambda _detail: self._missing(artifact_id)},
        )
        return response.content

    def exists(self, artifact_id: str) -> bool:
        if not ARTIFACT_ID.fullmatch(artifact_id):
            return False
        try:
            self._http.request(
                "HEAD",
                f"/payloads/{artifact_id}",
                doing=f"look up artifact {artifact_id}",
                idempotent=True,
                errors={404: lambda _detail: self._missing(artifact_id)},
            )
        except ArtifactMissingError:
            return False
        return True

    def _check(self, artifact_id: str) -> None:
        if not ARTIFACT_ID.fullmatch(artifact_id):
            raise ConfigurationError(
                f"{artifact_id!r} is not an artifact id (64 lowercase hexadecimal digits)"
            )

    def _missing(self, artifact_id: str) -> ArtifactMissingError:
        return ArtifactMissingError(
            f"artifact {artifact_id} is not in the artifact store of the Sematic server at "
            f"{self.url}. It was deleted, or it was written to a different store: point "
            "Sematic at that server, or run the pipeline again to recompute it."
        )


if TYPE_CHECKING:

    def _implements_the_port(store: HttpArtifactStore) -> ArtifactStore:
        return store
