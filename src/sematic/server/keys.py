"""Managing the API keys of a team server: ``/api/v1/keys``, for admin keys only.

- ``POST /keys`` (``{"user", "name", "role"}``): a new key; the answer holds the plain key,
  shown this once (the server keeps its sha256 only).
- ``GET /keys``: every key's id, user, name, role and times; never a key nor a hash.
- ``POST /keys/{id}/rotate``: a new key for the same user and role. The old key stays
  valid until it is revoked, so its users can switch first.
- ``POST /keys/{id}/revoke``: the key is refused from the next request on, by every
  server sharing the database.

A key that is not an admin's gets a 403; a server without keys (``sematic start``) a 409.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sematic.core.errors import ApiKeyNotFoundError, ConfigurationError
from sematic.core.keys import KEY_ID, KEY_ID_PATTERN, ApiKeyRecord, NewApiKey
from sematic.core.ports import ApiKeyStore
from sematic.server import bodies, guard
from sematic.server.bodies import JSONResponse, explained

MAX_BODY_BYTES = 16 * 1024
_STRICT = ConfigDict(strict=True, extra="forbid")
# A user or key name: printable text on one line (it is shown in the UI and the CLI).
_LABEL = r"^[^\x00-\x1f\x7f]*$"

KeyId = Annotated[
    str,
    Field(pattern=f"^{KEY_ID_PATTERN}$"),
    explained(string_pattern_mismatch="{value} is not an API key id"),
]
User = Annotated[
    str,
    Field(min_length=1, max_length=200, pattern=_LABEL),
    explained(string_pattern_mismatch="must be printable text on one line"),
]
KeyName = Annotated[
    str,
    Field(max_length=200, pattern=_LABEL),
    explained(string_pattern_mismatch="must be printable text on one line"),
]


class KeyRequest(BaseModel):
    """The body of ``POST /keys``: whose key, a label for it, and its role."""

    model_config = _STRICT

    user: User
    name: KeyName = ""
    role: Literal["admin", "write", "read"] = "write"


class ApiKey(BaseModel):
    """An API key as listed: no key, no hash. ``revoked_at`` is null while it is valid."""

    id: KeyId
    user: str
    name: str
    role: Literal["admin", "write", "read"]
    created_at: float
    revoked_at: float | None


class CreatedKey(ApiKey):
    """A key just made; ``key`` is the plain key, shown this once only."""

    key: str


class KeyList(BaseModel):
    """Every key of the server, revoked ones too, oldest first."""

    keys: list[ApiKey]


def routes(prefix: str, keys: ApiKeyStore | None) -> list[Route]:
    handlers = _Keys(keys)
    return [
        Route(f"{prefix}/keys", handlers.create, methods=["POST"]),
        Route(f"{prefix}/keys", handlers.list, methods=["GET"]),
        Route(f"{prefix}/keys/{{key_id}}/rotate", handlers.rotate, methods=["POST"]),
        Route(f"{prefix}/keys/{{key_id}}/revoke", handlers.revoke, methods=["POST"]),
    ]


class _Keys:
    def __init__(self, keys: ApiKeyStore | None) -> None:
        self.keys = keys

    async def create(self, request: Request) -> Response:
        keys = self._admin(request)
        body = bodies.parse_model(KeyRequest, await bodies.read(request, MAX_BODY_BYTES))
        made = await asyncio.to_thread(keys.create, body.user, body.name, body.role)
        return JSONResponse(_created(made))

    async def list(self, request: Request) -> Response:
        keys = self._admin(request)
        found = await asyncio.to_thread(keys.list)
        return JSONResponse({"keys": [_listed(record) for record in found]})

    async def rotate(self, request: Request) -> Response:
        keys = self._admin(request)
        key_id = _key_id(request)
        await _no_body(request)
        try:
            made = await asyncio.to_thread(keys.rotate, key_id)
        except ApiKeyNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        except ConfigurationError as exc:
            raise HTTPException(409, str(exc)) from None
        return JSONResponse(_created(made))

    async def revoke(self, request: Request) -> Response:
        keys = self._admin(request)
        key_id = _key_id(request)
        await _no_body(request)
        try:
            record = await asyncio.to_thread(keys.revoke, key_id)
        except ApiKeyNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        return JSONResponse(_listed(record))

    def _admin(self, request: Request) -> ApiKeyStore:
        principal = guard.principal_of(request.scope)
        if self.keys is None or principal is None:
            raise HTTPException(
                409,
                "This server has no API keys to manage: start it with `sematic server "
                "--api-key-env VAR` (the key in VAR is the admin key that creates the others).",
            )
        if not principal.is_admin:
            raise HTTPException(
                403,
                f"Managing API keys needs an admin key; the key of user {principal.user!r} "
                f"has the role {principal.role}.",
            )
        return self.keys


def _key_id(request: Request) -> str:
    value: str = request.path_params["key_id"]
    if not KEY_ID.fullmatch(value):
        raise HTTPException(
            400, f"key_id: {value[:80]!r} is not an API key id (32 lowercase hex digits)."
        )
    return value


async def _no_body(request: Request) -> None:
    """Rotate and revoke take no body; an empty JSON object is accepted too."""
    body = await bodies.read(request, MAX_BODY_BYTES)
    if bodies.parse_object(body):
        raise HTTPException(400, "body: this request takes no fields.")


def _listed(record: ApiKeyRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "user": record.user,
        "name": record.name,
        "role": record.role,
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
    }


def _created(made: NewApiKey) -> dict[str, object]:
    return {**_listed(made.record), "key": made.key}
