"""``ApiKeyStore`` in the SQL database of a ``SqlMetadataStore`` (the ``api_keys`` table).

Only the sha256 of a key is stored (``sematic.core.keys.key_hash``); the plain key exists
in the answer to ``create`` or ``rotate`` and nowhere else. ``authenticate`` reads the
table on every call (one indexed lookup), so that a revoked key is refused at once by
every server process sharing the database.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Engine, insert, select, update

from sematic.core.errors import ApiKeyNotFoundError, ConfigurationError
from sematic.core.keys import ROLES, ApiKeyRecord, NewApiKey, Principal, Role, key_hash
from sematic.storage.sql.models import api_keys

# Turns database errors into the error tree (``SqlMetadataStore._errors``).
Guard = Callable[[str], AbstractContextManager[None]]
KEY_BYTES = 32


class SqlApiKeys:
    """The API keys kept in the database of ``engine`` (already migrated)."""

    def __init__(self, engine: Engine, errors: Guard) -> None:
        self._engine = engine
        self._errors = errors

    def create(self, user: str, name: str, role: Role) -> NewApiKey:
        """A new key for ``user``; the plain key is in the answer only."""
        if role not in ROLES:
            raise ConfigurationError(f"Unknown role {role!r}; expected one of {', '.join(ROLES)}.")
        key = secrets.token_urlsafe(KEY_BYTES)
        record = ApiKeyRecord(uuid.uuid4().hex, user, name, role, time.time())
        row = {**_params(record), "key_hash": key_hash(key)}
        with self._errors("write to"), self._engine.begin() as conn:
            conn.execute(insert(api_keys), [row])
        return NewApiKey(record, key)

    def list(self) -> list[ApiKeyRecord]:
        """Every key ever made, revoked ones too, oldest first (no key, no hash)."""
        query = select(*_LISTED).order_by(api_keys.c.created_at, api_keys.c.id)
        return [_record(row) for row in self._rows(query)]

    def get(self, key_id: str) -> ApiKeyRecord:
        rows = self._rows(select(*_LISTED).where(api_keys.c.id == key_id))
        if not rows:
            raise ApiKeyNotFoundError(f"No API key with id {key_id!r}.")
        return _record(rows[0])

    def revoke(self, key_id: str) -> ApiKeyRecord:
        """Refuse the key from now on (revoking it again keeps the first time)."""
        statement = (
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=time.time())
        )
        with self._errors("write to"), self._engine.begin() as conn:
            conn.execute(statement)
        return self.get(key_id)

    def rotate(self, key_id: str) -> NewApiKey:
        """A new key for the same user and role; the old one stays valid until revoked,
        so that its users can move to the new one first."""
        old = self.get(key_id)
        if old.revoked_at is not None:
            raise ConfigurationError(f"API key {key_id} is revoked: create a new key instead.")
        return self.create(old.user, old.name, old.role)

    def authenticate(self, key: str) -> Principal | None:
        """Who holds ``key``, if it is a valid (unrevoked) key."""
        query = select(api_keys.c.user, api_keys.c.role).where(
            api_keys.c.key_hash == key_hash(key), api_keys.c.revoked_at.is_(None)
        )
        rows = self._rows(query)
        role = _role(rows[0]["role"]) if rows else None
        return None if role is None else Principal(str(rows[0]["user"]), role)

    def _rows(self, query: Any) -> Sequence[Any]:
        with self._errors("read from"), self._engine.connect() as conn:
            return list(conn.execute(query).mappings())


_LISTED = tuple(c for c in api_keys.c if c.name != "key_hash")


def _params(record: ApiKeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "user": record.user,
        "name": record.name,
        "role": record.role,
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
    }


def _record(row: Mapping[str, Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row["id"],
        user=row["user"],
        name=row["name"],
        role=_role(row["role"]) or "read",
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


def _role(value: object) -> Role | None:
    for role in ROLES:
        if value == role:
            return role
    return None


__all__ = ["SqlApiKeys"]
