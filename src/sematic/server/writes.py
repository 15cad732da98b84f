"""The store API resolvers and workers write through (``SEMATIC_SERVER_URL``).

- ``POST /write``: runs, transitions, artifact descriptions and edges (JSON), validated
  strictly and written in one transaction. A bad field is a 400 naming it.
- ``PUT /artifacts/{id}/payload``: the payload's bytes, with its type key in the
  ``X-Sematic-Type-Key`` header. The server checks that sha256(type key, 0, bytes) is the
  id before storing anything: a mismatch is a 400 and nothing is stored.
- ``POST /payloads``: many payloads at once (``wire.payload_batch``: each with its id and
  type key), all checked before any is stored.
- ``GET``/``HEAD /payloads/{id}``: the stored bytes, or whether they exist, before the
  artifact is recorded too (the read API's ``/artifacts/{id}/payload`` needs the record).
- ``GET /cached-outputs/{cache_key}``, ``POST /artifacts/lookup``, ``GET /changed-runs``,
  ``GET /runs/{id}/cancel``: the reads of the metadata store the read API lacks.

Every endpoint here needs the API key when the server has one. Nothing is ever
deserialized: payloads are hashed and stored as bytes, the rest is JSON.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import unquote

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sematic.core.engine import State
from sematic.core.errors import ArtifactCorruptedError, StoreError
from sematic.core.ports import ArtifactStore, MetadataStore
from sematic.core.records import ArtifactRecord, EdgeRecord, RunRecord, TransitionRecord
from sematic.storage.http import wire
from sematic.storage.serialization import verify

ARTIFACT_ID = re.compile(r"[0-9a-f]{64}")
RUN_ID = re.compile(r"[0-9a-f]{32}")
CACHE_KEY = re.compile(r"[0-9a-f]{64}")  # sha256 of function, source and inputs
STATES = frozenset(state.value for state in State)
MAX_WRITE_BYTES = 256 * 1024 * 1024
MAX_TYPE_KEY_BYTES = 8 * 1024
MAX_LOOKUP_IDS = 10_000
MAX_BATCH_ITEMS = 100_000
MAX_CHANGED = 1_000


class _Batch(BaseModel):
    """The body of ``POST /write``: no unknown field, no coercion (JSON has no tuple)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    runs: list[RunRecord] = []
    transitions: list[TransitionRecord] = []
    artifacts: list[ArtifactRecord] = []
    edges: list[EdgeRecord] = []


class _Lookup(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    ids: list[str]


def routes(
    prefix: str,
    *,
    metadata: MetadataStore,
    artifacts: ArtifactStore,
    authorize: Callable[[Request], None],
) -> list[Route]:
    """The routes of the store API under ``prefix``; ``authorize`` raises a 401 if needed."""
    writes = _Writes(metadata, artifacts, authorize)
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


class _Writes:
    def __init__(
        self,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        authorize: Callable[[Request], None],
    ) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self.authorize = authorize

    async def write(self, request: Request) -> Response:
        self.authorize(request)
        batch = _parse(_Batch, await _body(request, MAX_WRITE_BYTES))
        _check_batch(batch)
        try:
            await asyncio.to_thread(
                self.metadata.write,
                runs=batch.runs,
                transitions=batch.transitions,
                artifacts=batch.artifacts,
                edges=batch.edges,
            )
        except StoreError as exc:  # refused by the database (a constraint): nothing written
            raise HTTPException(409, f"The metadata store refused the batch: {exc}") from None
        counts = {name: len(getattr(batch, name)) for name in _Batch.model_fields}
        return JSONResponse({"written": counts})

    async def put_payload(self, request: Request) -> Response:
        self.authorize(request)
        artifact_id = _artifact_id(request.path_params["artifact_id"])
        type_key = _type_key(request.headers.get(wire.TYPE_KEY_HEADER))
        payload = await request.body()
        try:
            await asyncio.to_thread(self._verified_put, artifact_id, type_key, payload)
        except ArtifactCorruptedError:
            raise HTTPException(
                400,
                f"The payload ({len(payload)} bytes) does not hash to artifact id "
                f"{artifact_id} with the type key given in {wire.TYPE_KEY_HEADER}; nothing "
                "was stored.",
            ) from None
        return JSONResponse({"artifact_id": artifact_id, "size": len(payload)})

    async def put_payloads(self, request: Request) -> Response:
        self.authorize(request)
        body = await _body(request, MAX_WRITE_BYTES)
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
        for artifact_id, type_key, payload in items:
            self.artifacts.put(artifact_id, payload, type_key=type_key)

    def _verified_put(self, artifact_id: str, type_key: str, payload: bytes) -> None:
        verify(artifact_id, {"type_key": type_key}, payload)  # before anything is stored
        self.artifacts.put(artifact_id, payload, type_key=type_key)

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
        ids = _parse(_Lookup, await _body(request, MAX_WRITE_BYTES)).ids
        if len(ids) > MAX_LOOKUP_IDS:
            raise HTTPException(400, f"At most {MAX_LOOKUP_IDS} ids per lookup, not {len(ids)}.")
        for index, artifact_id in enumerate(ids):
            if not ARTIFACT_ID.fullmatch(artifact_id):
                raise HTTPException(400, f"ids[{index}]: {artifact_id!r} is not an artifact id.")
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
        params = request.query_params
        since = _number(params.get("since"), "since")
        raw_limit = params.get("limit") or str(MAX_CHANGED)
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_CHANGED:
            raise HTTPException(
                400, f"limit must be between 1 and {MAX_CHANGED}, not {raw_limit!r}."
            )
        limit = int(raw_limit)
        root_id = params.get("root_id") or None
        if root_id is not None:
            _run_id(root_id)
        runs = await asyncio.to_thread(
            self.metadata.changed_runs, since=since, root_id=root_id, limit=limit
        )
        return JSONResponse({"runs": [wire.run_json(run) for run in runs]})

    async def cancel_request(self, request: Request) -> Response:
        self.authorize(request)
        root_id = _run_id(request.path_params["run_id"])
        found = await asyncio.to_thread(self.metadata.cancel_request, root_id)
        if found is None:
            return JSONResponse({"cancel": None})
        return JSONResponse(
            {
                "cancel": {
                    "root_id": found.root_id,
                    "reason": found.reason,
                    "requested_at": found.requested_at,
                }
            }
        )


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"The request body is larger than {limit} bytes.")
    return await request.body()


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = errors[0]
        where = _location(first["loc"])
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        if first["type"] == "json_invalid":
            raise HTTPException(400, f"The request body is not JSON: {first['msg']}.") from None
        raise HTTPException(400, f"{where}: {first['msg']}{more}.") from None


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "body"


def _check_batch(batch: _Batch) -> None:
    """What the types alone do not say: ids are hex of the right length, states exist."""
    for index, run in enumerate(batch.runs):
        at = f"runs[{index}]"
        for name in ("id", "root_id", "parent_id", "nested_run_id"):
            _check(RUN_ID, getattr(run, name), f"{at}.{name}", "a run id", optional=True)
        for name, artifact_id in run.inputs.items():
            _check(ARTIFACT_ID, artifact_id, f"{at}.inputs.{name}", "an artifact id")
        _check(ARTIFACT_ID, run.output, f"{at}.output", "an artifact id", optional=True)
        _check(CACHE_KEY, run.cache_key, f"{at}.cache_key", "a cache key", optional=True)
        if run.state not in STATES:
            raise HTTPException(400, f"{at}.state: unknown state {run.state!r}.")
    for index, transition in enumerate(batch.transitions):
        at = f"transitions[{index}]"
        _check(RUN_ID, transition.run_id, f"{at}.run_id", "a run id")
        if transition.state not in STATES:
            raise HTTPException(400, f"{at}.state: unknown state {transition.state!r}.")
    for index, artifact in enumerate(batch.artifacts):
        _check(ARTIFACT_ID, artifact.id, f"artifacts[{index}].id", "an artifact id")
        if artifact.size < 0:
            raise HTTPException(400, f"artifacts[{index}].size: must not be negative.")
    for index, edge in enumerate(batch.edges):
        at = f"edges[{index}]"
        _check(RUN_ID, edge.source_run_id, f"{at}.source_run_id", "a run id", optional=True)
        _check(
            RUN_ID, edge.destination_run_id, f"{at}.destination_run_id", "a run id", optional=True
        )
        _check(ARTIFACT_ID, edge.artifact_id, f"{at}.artifact_id", "an artifact id")


def _check(
    pattern: re.Pattern[str], value: str | None, where: str, what: str, *, optional: bool = False
) -> None:
    if value is None and optional:
        return
    if value is None or not pattern.fullmatch(value):
        raise HTTPException(400, f"{where}: {value!r} is not {what}.")


def _artifact_id(value: str) -> str:
    if not ARTIFACT_ID.fullmatch(value):
        raise HTTPException(400, f"{value!r} is not an artifact id (64 lowercase hex digits).")
    return value


def _run_id(value: str) -> str:
    if not RUN_ID.fullmatch(value):
        raise HTTPException(400, f"{value!r} is not a run id (32 lowercase hex digits).")
    return value


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


def _number(raw: str | None, name: str) -> float:
    if raw is None or raw == "":
        raise HTTPException(400, f"{name} is required.")
    try:
        return float(raw)
    except ValueError:
        raise HTTPException(400, f"{name} must be a number, not {raw!r}.") from None
