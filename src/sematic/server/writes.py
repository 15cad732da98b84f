"""The store API resolvers and workers write through (``SEMATIC_SERVER_URL``).

- ``POST /write``: runs, transitions, artifact descriptions and edges (JSON), validated
  strictly and written in one transaction. A bad field is a 400 naming it.
- ``PUT /artifacts/{id}/payload``: the payload's bytes, with its type key in the
  ``X-Sematic-Type-Key`` header, at most ``max_payload_bytes`` (413 beyond, decided while
  the body streams in). The bytes go to the artifact store a chunk at a time, under a
  temporary name, hashed on the way: only when sha256(type key, 0, bytes) is the id do they
  become the artifact (replacing whatever was stored under it); a mismatch is a 400 and
  nothing is stored. The server never holds more than a chunk of a payload in memory.
- ``POST /payloads``: many payloads at once (``wire.payload_batch``: each with its id and
  type key), all checked before any is stored.
- ``GET``/``HEAD /payloads/{id}``: the stored bytes, or whether they exist, before the
  artifact is recorded too (the read API's ``/artifacts/{id}/payload`` needs the record).
- ``GET /cached-outputs/{cache_key}``, ``POST /artifacts/lookup``, ``GET /changed-runs``,
  ``GET /runs/{id}/cancel``: the reads of the metadata store the read API lacks.

Every endpoint here needs the API key when the server has one. On such a server,
``submitted_by`` of the runs written is the user of that key, whatever the client sent
(the metadata store keeps a run's first value: a later writer cannot change it). Nothing is ever
deserialized: payloads are hashed and stored as bytes, the rest is JSON, read by
``bodies`` (size limits while streaming, depth limit, no NaN or infinity). Nothing reaches
the metadata store that it cannot keep: non-finite floats and integers beyond signed 64
bits are a 400 naming the field.

The JSON bodies are validated by the pydantic types below (``Batch``, ``Lookup``), and
the OpenAPI document (``sematic.server.openapi``) describes them with the JSON schemas
generated from those types: what it says is what is checked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, GetPydanticSchema
from pydantic_core import core_schema
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sematic.core import wire
from sematic.core.errors import ArtifactCorruptedError, StoreError
from sematic.core.ports import MetadataStore, PayloadUpload, StreamingArtifactStore
from sematic.core.records import (
    ARTIFACT_ID,
    ARTIFACT_ID_PATTERN,
    INT64_MAX,
    ArtifactRecord,
    EdgeRecord,
    RunRecord,
    TransitionRecord,
    first_unstorable,
)
from sematic.server import bodies, guard, params
from sematic.server.bodies import JSONResponse, explained
from sematic.server.params import ArtifactId, RunId
from sematic.storage.serialization import verify

CACHE_KEY = ARTIFACT_ID  # a sha256 hex digest too: of function, source and inputs
MAX_WRITE_BYTES = 256 * 1024 * 1024
# A batch of payloads is held whole to check every one before storing any; clients send
# at most 16 MiB in one (``HttpArtifactStore.put_many``), larger payloads alone (streamed).
MAX_PAYLOAD_BATCH_BYTES = 64 * 1024 * 1024
# A payload upload, unless the server is told otherwise (--max-payload-bytes): as large
# as a value a worker can comfortably hold in memory to serialize it. The server streams
# it to the store, so the limit bounds disk use per request, not the server's memory.
DEFAULT_MAX_PAYLOAD_BYTES = 2 * 1024**3
UPLOAD_CHUNK = 1024 * 1024  # bytes of a payload upload held before they are written
MAX_TYPE_KEY_BYTES = 8 * 1024
MAX_LOOKUP_IDS = 10_000
MAX_LOOKUP_BYTES = MAX_LOOKUP_IDS * 80 + 64 * 1024
MAX_BATCH_ITEMS = 100_000
MAX_CHANGED = 1_000


# No unknown field, no coercion (JSON has no tuple), no NaN or infinity in a float field.
_STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)

CacheKey = Annotated[
    str,
    Field(pattern=f"^{ARTIFACT_ID_PATTERN}$"),
    explained(string_pattern_mismatch="{value} is not a cache key"),
]
_Size = Annotated[
    int,
    Field(ge=0, le=INT64_MAX),
    explained(
        greater_than_equal="must not be negative", less_than_equal=f"must be at most {INT64_MAX}"
    ),
]


class TypeDescription(BaseModel):
    """How to read an artifact back: ``type_key``, the type key its id was computed from
    (readers check the payload with it), and what else its serializer wrote."""

    model_config = ConfigDict(strict=True, extra="allow")

    type_key: str


_Seconds = Annotated[float, Field(ge=0)]


class PodEvent(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)

    at: float | None = None
    reason: str | None = None
    message: str | None = None


class PodAttempt(BaseModel):
    """One pod a run ran in (``sematic.core.usage``)."""

    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)

    job: str
    pod: str | None = None
    node: str | None = None
    node_type: str | None = None
    image: str | None = None
    image_digest: str | None = None
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    started_at: float | None = None
    finished_at: float | None = None
    ended: str | None = None
    exit_code: int | None = None
    message: str | None = None
    events: list[PodEvent] = Field(default=[], max_length=1000)


class Execution(BaseModel):
    """Where a run ran: its pods, and what they reserved for how long."""

    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)

    attempts: list[PodAttempt] = Field(default=[], max_length=1000)
    usage: dict[str, _Seconds] = {}


def _kept_if_valid(value: Any, validate: core_schema.ValidatorFunctionWrapHandler) -> Any:
    validate(value)
    return value


def _checked_by(model: type[BaseModel]) -> GetPydanticSchema:
    """An annotation for a JSON object field: validated (and described) by ``model``, and
    kept as the object it was."""

    def schema(_source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_wrap_validator_function(_kept_if_valid, handler(model))

    return GetPydanticSchema(schema)


# The records as they travel: the fields of the record (``sematic.core.records``), with ids
# of the right form, a size the metadata store keeps, a type description with a type key.
# Validating a batch yields the records themselves (instances of these subclasses).


@dataclass(frozen=True)
class Run(RunRecord):
    """A run: a call of a function within a pipeline (the root run is the pipeline).

    Times are seconds since the epoch (UTC), finite numbers (a non-finite time recorded by
    an older version is sent as null). ``inputs`` maps parameter names to artifact ids;
    ``output`` is the output artifact id once RESOLVED."""

    __pydantic_config__ = _STRICT

    id: RunId
    root_id: RunId
    parent_id: RunId | None
    cache_key: CacheKey | None = None
    inputs: dict[str, ArtifactId] = field(default_factory=dict)
    output: ArtifactId | None = None
    nested_run_id: RunId | None = None
    execution: Annotated[dict[str, Any], _checked_by(Execution)] | None = None


@dataclass(frozen=True)
class Transition(TransitionRecord):
    """A run entered ``state`` at time ``at`` (seconds since the epoch)."""

    __pydantic_config__ = _STRICT

    run_id: RunId


@dataclass(frozen=True)
class Artifact(ArtifactRecord):
    """A value, stored once: ``id`` is the sha256 of its type key and serialized bytes.
    ``summary`` is JSON for display (large values truncated); the payload is not here."""

    __pydantic_config__ = _STRICT

    id: ArtifactId
    type_description: Annotated[dict[str, Any], _checked_by(TypeDescription)]
    size: _Size


@dataclass(frozen=True)
class Edge(EdgeRecord):
    """An artifact flowing from a run's output (none: given by the caller) into another
    run's parameter (none: the pipeline's final output)."""

    __pydantic_config__ = _STRICT

    source_run_id: RunId | None
    destination_run_id: RunId | None
    artifact_id: ArtifactId


class Batch(BaseModel):
    """The body of ``POST /write``: runs, transitions, artifacts and edges to record."""

    model_config = _STRICT

    runs: list[Run] = []
    transitions: list[Transition] = []
    artifacts: list[Artifact] = []
    edges: list[Edge] = []
    reopened: list[RunId] = []  # runs a resume runs again: they may leave a terminal state


class Lookup(BaseModel):
    """The body of ``POST /artifacts/lookup``: the artifact ids to look up."""

    model_config = _STRICT

    ids: Annotated[list[ArtifactId], Field(max_length=MAX_LOOKUP_IDS)]


def routes(
    prefix: str,
    *,
    metadata: MetadataStore,
    artifacts: StreamingArtifactStore,
    authorize: Callable[[Request], None],
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    on_payload_stored: PayloadStored | None = None,
) -> list[Route]:
    """The routes of the store API under ``prefix``; ``authorize`` raises a 401 if needed;
    ``on_payload_stored`` is told of each payload stored (the metrics count its bytes)."""
    writes = _Writes(
        metadata, artifacts, authorize, max_payload_bytes, on_payload_stored or _ignore
    )
    return [
        Route(f"{prefix}/write", writes.write, methods=["POST"]),
        Route(f"{prefix}/artifacts/{{artifact_id}}/payload", writes.put_payload, methods=["PUT"]),
        Route(f"{prefix}/payloads", writes.put_payloads, methods=["POST"]),
        Route(f"{prefix}/payloads/{{artifact_id}}", writes.get_payload, methods=["GET"]),
        Route(f"{prefix}/artifacts/lookup", writes.lookup, methods=["POST"]),
        Route(f"{prefix}/cached-outputs/{{cache_key}}", writes.cached_output, methods=["GET"]),
        Route(f"{prefix}/changed-runs", writes.changed_runs, methods=["GET"]),
        Route(f"{prefix}/runs/{{run_id}}/cancel", writes.cancel_request, methods=["GET"]),
    ]


class PayloadStored(Protocol):
    """A hook told of each payload the server stored (checked against its id): its
    ``artifact_id`` and ``size`` in bytes. It accepts keyword arguments it does not know."""

    def __call__(self, *, artifact_id: str, size: int) -> None: ...


def _ignore(*, artifact_id: str, size: int, **_: Any) -> None:
    pass


class _Writes:
    def __init__(
        self,
        metadata: MetadataStore,
        artifacts: StreamingArtifactStore,
        authorize: Callable[[Request], None],
        max_payload_bytes: int,
        on_payload_stored: PayloadStored,
    ) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self.authorize = authorize
        self.max_payload_bytes = max_payload_bytes
        self.on_payload_stored = on_payload_stored

    async def write(self, request: Request) -> Response:
        self.authorize(request)
        batch = bodies.parse_model(Batch, await bodies.read(request, MAX_WRITE_BYTES))
        _check_batch(batch)
        runs: list[RunRecord] = list(batch.runs)
        principal = guard.principal_of(request.scope)
        if principal is not None:  # a keyed server: the key says who submits, not the client
            runs = [dataclasses.replace(run, submitted_by=principal.user) for run in runs]
        try:
            await asyncio.to_thread(
                self.metadata.write,
                runs=runs,
                transitions=batch.transitions,
                artifacts=batch.artifacts,
                edges=batch.edges,
                reopened=batch.reopened,
            )
        except StoreError as exc:  # refused by the database (a constraint): nothing written
            raise HTTPException(409, f"The metadata store refused the batch: {exc}") from None
        counts = {name: len(getattr(batch, name)) for name in Batch.model_fields}
        return JSONResponse({"written": counts})

    async def put_payload(self, request: Request) -> Response:
        self.authorize(request)
        artifact_id = _artifact_id(request.path_params["artifact_id"])
        type_key = _type_key(request.headers.get(wire.TYPE_KEY_HEADER))
        # The artifact id is sha256(type key, a zero byte, payload) (see ``verify``).
        digest = hashlib.sha256(type_key.encode())
        digest.update(b"\0")
        size = 0
        pending = bytearray()  # chunks as they came, written a MiB at a time
        upload = await asyncio.to_thread(self.artifacts.open_upload, artifact_id)
        try:
            async for chunk in bodies.stream(request, self.max_payload_bytes):
                pending += chunk
                size += len(chunk)
                if len(pending) >= UPLOAD_CHUNK:
                    await asyncio.to_thread(_write_hashed, upload, digest, bytes(pending))
                    pending.clear()
            await asyncio.to_thread(_write_hashed, upload, digest, bytes(pending))
            if digest.hexdigest() != artifact_id:
                raise HTTPException(
                    400,
                    f"The payload ({size} bytes) does not hash to artifact id {artifact_id} "
                    f"with the type key given in {wire.TYPE_KEY_HEADER}; nothing was stored.",
                )
            await asyncio.to_thread(upload.commit)
        finally:
            await asyncio.to_thread(upload.abort)  # no-op once committed
        self.on_payload_stored(artifact_id=artifact_id, size=size)
        return JSONResponse({"artifact_id": artifact_id, "size": size})

    async def put_payloads(self, request: Request) -> Response:
        self.authorize(request)
        body = await bodies.read(request, MAX_PAYLOAD_BATCH_BYTES)
        try:
            items = list(wire.read_payload_batch(body))
        except ValueError as exc:
            raise HTTPException(400, f"{exc}; nothing was stored.") from None
        if len(items) > MAX_BATCH_ITEMS:
            raise HTTPException(400, f"At most {MAX_BATCH_ITEMS} payloads per request.")
        for index, (artifact_id, type_key, _) in enumerate(items):
            if not ARTIFACT_ID.fullmatch(artifact_id):
                raise HTTPException(
                    400, f"payloads[{index}].id: {artifact_id!r} is not an artifact id."
                )
            if len(type_key) > MAX_TYPE_KEY_BYTES:
                raise HTTPException(400, f"payloads[{index}].type_key is too long.")
        await asyncio.to_thread(self._verified_put_all, items)
        return JSONResponse({"stored": len(items)})

    def _verified_put_all(self, items: list[tuple[str, str, bytes]]) -> None:
        for index, (artifact_id, type_key, payload) in enumerate(items):  # all, then store
            try:
                verify(artifact_id, {"type_key": type_key}, payload)
            except ArtifactCorruptedError:
                raise HTTPException(
                    400,
                    f"payloads[{index}] ({len(payload)} bytes) does not hash to artifact id "
                    f"{artifact_id} with its type key; nothing was stored.",
                ) from None
        # At once: a packed store keeps the small ones in one transaction.
        self.artifacts.put_many(
            {artifact_id: payload for artifact_id, _, payload in items},
            type_keys={artifact_id: type_key for artifact_id, type_key, _ in items},
        )
        for artifact_id, _, payload in items:
            self.on_payload_stored(artifact_id=artifact_id, size=len(payload))

    async def get_payload(self, request: Request) -> Response:
        self.authorize(request)
        artifact_id = _artifact_id(request.path_params["artifact_id"])
        if request.method == "HEAD":
            found = await asyncio.to_thread(self.artifacts.exists, artifact_id)
            return Response(status_code=200 if found else 404)
        payload = await asyncio.to_thread(self.artifacts.get, artifact_id)  # missing: 404
        return Response(payload, media_type="application/octet-stream")

    async def lookup(self, request: Request) -> Response:
        self.authorize(request)
        ids = bodies.parse_model(Lookup, await bodies.read(request, MAX_LOOKUP_BYTES)).ids
        found = await asyncio.to_thread(self.metadata.get_artifacts, ids)
        return JSONResponse({"artifacts": [wire.artifact_json(a) for a in found]})

    async def cached_output(self, request: Request) -> Response:
        self.authorize(request)
        key = request.path_params["cache_key"]
        if not CACHE_KEY.fullmatch(key):
            raise HTTPException(400, f"{key!r} is not a cache key (64 lowercase hex digits).")
        found = await asyncio.to_thread(self.metadata.find_cached_output, key)
        return JSONResponse({"artifact_id": found})

    async def changed_runs(self, request: Request) -> Response:
        self.authorize(request)
        query = request.query_params
        since = params.number(query.get("since"), "since")
        limit = params.integer(query, "limit", MAX_CHANGED, 1, MAX_CHANGED)
        root_id = query.get("root_id") or None
        if root_id is not None:
            params.run_id(root_id, "root_id")
        after_id = query.get("after_id") or None
        if after_id is not None:
            params.run_id(after_id, "after_id")
        runs = await asyncio.to_thread(
            self.metadata.changed_runs,
            since=since,
            root_id=root_id,
            limit=limit,
            after_id=after_id,
        )
        return JSONResponse({"runs": [wire.run_json(run) for run in runs]})

    async def cancel_request(self, request: Request) -> Response:
        self.authorize(request)
        root_id = _run_id(request.path_params["run_id"])
        found = await asyncio.to_thread(self.metadata.cancel_request, root_id)
        if found is None:
            return JSONResponse({"cancel": None})
        return JSONResponse({"cancel": wire.cancel_json(found)})


def _write_hashed(upload: PayloadUpload, digest: hashlib._Hash, chunk: bytes) -> None:
    digest.update(chunk)
    upload.write(chunk)


def _check_batch(batch: Batch) -> None:
    """What the types do not say: the JSON of any shape in a record (resource
    requirements, type descriptions, summaries) fits in the metadata store."""
    for index, run in enumerate(batch.runs):
        _check_storable(run.resource_requirements, f"runs[{index}].resource_requirements")
        _check_storable(run.execution, f"runs[{index}].execution")
    for index, artifact in enumerate(batch.artifacts):
        _check_storable(artifact.type_description, f"artifacts[{index}].type_description")
        _check_storable(artifact.summary, f"artifacts[{index}].summary")


def _check_storable(value: object, where: str) -> None:
    """The typed float fields are checked by pydantic; these are JSON of any shape."""
    problem = first_unstorable(value, where)
    if problem is not None:
        raise HTTPException(400, f"{problem[0]}: {problem[1]}.")


def _artifact_id(value: str) -> str:
    return params.artifact_id(value)


def _run_id(value: str) -> str:
    return params.run_id(value)


def _type_key(header: str | None) -> str:
    if not header:
        raise HTTPException(
            400,
            f"The {wire.TYPE_KEY_HEADER} header is missing: the server needs the type key "
            "to check the payload against its id.",
        )
    if len(header) > MAX_TYPE_KEY_BYTES:
        raise HTTPException(400, f"The {wire.TYPE_KEY_HEADER} header is too long.")
    try:
        return unquote(header, errors="strict")
    except UnicodeDecodeError:
        raise HTTPException(400, f"The {wire.TYPE_KEY_HEADER} header is not UTF-8.") from None
