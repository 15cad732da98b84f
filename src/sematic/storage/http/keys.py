"""The API keys of a Sematic server, managed over its HTTP API (``/api/v1/keys``).

Only an admin key may manage keys; the server answers 403 to any other (raised here as a
``ConfigurationError`` saying so), and 409 when it runs without keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sematic.core.errors import ApiKeyNotFoundError, ConfigurationError, SematicError
from sematic.core.keys import ROLES, ApiKeyRecord, NewApiKey, Role
from sematic.storage.http._connection import ErrorFactory, HttpConnection


class HttpKeyAdmin:
    """Create, list, rotate and revoke the keys of the server at ``url``, with the admin
    key ``api_key``."""

    def __init__(self, url: str, api_key: str | None = None) -> None:
        self._http = HttpConnection(url, api_key)
        self.url = self._http.url

    def __enter__(self) -> HttpKeyAdmin:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def create(self, user: str, name: str, role: Role) -> NewApiKey:
        response = self._http.request(
            "POST",
            "/keys",
            doing=f"create an API key for {user!r}",
            idempotent=False,
            json={"user": user, "name": name, "role": role},
            errors=self._errors(),
        )
        return _new_key(response.json())

    def list(self) -> list[ApiKeyRecord]:
        response = self._http.request(
            "GET", "/keys", doing="list the API keys", idempotent=True, errors=self._errors()
        )
        return [_record(item) for item in response.json()["keys"]]

    def rotate(self, key_id: str) -> NewApiKey:
        response = self._http.request(
            "POST",
            f"/keys/{key_id}/rotate",
            doing=f"rotate API key {key_id}",
            idempotent=False,
            errors=self._errors(key_id),
        )
        return _new_key(response.json())

    def revoke(self, key_id: str) -> ApiKeyRecord:
        response = self._http.request(
            "POST",
            f"/keys/{key_id}/revoke",
            doing=f"revoke API key {key_id}",
            idempotent=True,
            errors=self._errors(key_id),
        )
        return _record(response.json())

    def _errors(self, key_id: str | None = None) -> dict[int, ErrorFactory]:
        def forbidden(detail: str) -> SematicError:
            return ConfigurationError(
                f"The Sematic server at {self.url} refused: {detail} Use an admin key "
                "(`sematic settings set api_key KEY` or SEMATIC_API_KEY)."
            )

        def refused(detail: str) -> SematicError:
            return ConfigurationError(f"The Sematic server at {self.url} refused: {detail}")

        def missing(detail: str) -> SematicError:
            return ApiKeyNotFoundError(detail or f"No API key with id {key_id!r}.")

        return {400: refused, 403: forbidden, 404: missing, 409: refused}


def _record(data: Mapping[str, Any]) -> ApiKeyRecord:
    role = data["role"]
    if role not in ROLES:
        raise ConfigurationError(f"The server sent an unknown role {role!r}.")
    return ApiKeyRecord(
        id=data["id"],
        user=data["user"],
        name=data["name"],
        role=role,
        created_at=data["created_at"],
        revoked_at=data["revoked_at"],
    )


def _new_key(data: Mapping[str, Any]) -> NewApiKey:
    return NewApiKey(_record(data), data["key"])
