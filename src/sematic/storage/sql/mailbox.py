"""``Mailbox`` in the SQL database of a ``SqlMetadataStore`` (the ``mailbox`` table).

A message is a row: its channel, its JSON text and when it was posted. Ids come from the
table's key, which only increases, and a reader's cursor is the last id it saw, so a post
must become visible in id order within its channel: on PostgreSQL, where ids are taken
before commit and transactions may commit out of order, a post first takes a
transaction-scoped advisory lock on its channel (posts to one channel take turns); SQLite
has one writer at a time anyway.

Channels left behind (a driver that died) do not pile up: at most once every
``PURGE_EVERY_S`` a post also deletes the messages older than ``MAX_AGE_S``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Engine, delete, func, insert, or_, select

from sematic.core.errors import ConfigurationError, StoreError
from sematic.storage.sql.models import mailbox

# Turns database errors into the error tree (``SqlMetadataStore._errors``).
Guard = Callable[[str], AbstractContextManager[None]]
MAX_AGE_S = 24 * 3600.0
PURGE_EVERY_S = 60.0
MAX_CHANNEL_LENGTH = 200
# The first key of the advisory locks a post takes (the second is the channel's hash).
_PG_LOCK_SPACE = 0x4D41494C  # "MAIL"


class SqlMailbox:
    """The mailbox kept in the database of ``engine`` (already migrated)."""

    def __init__(self, engine: Engine, errors: Guard) -> None:
        self._engine = engine
        self._errors = errors
        self._postgres = engine.dialect.name == "postgresql"
        self._purged_at: float | None = None  # the first post purges
        self._purge_lock = threading.Lock()

    def post(self, channel: str, message: dict[str, Any]) -> int:
        """Add ``message`` to ``channel``; its id (above every id given before)."""
        _check_channel(channel)
        body = _encode(message)
        row = {"channel": channel, "body": body, "created_at": time.time()}
        with self._errors("write to"), self._engine.begin() as conn:
            if self._postgres:
                lock = func.pg_advisory_xact_lock(_PG_LOCK_SPACE, func.hashtext(channel))
                conn.execute(select(lock))
            key = conn.execute(insert(mailbox).values(row)).inserted_primary_key
        new_id = key[0] if key else None
        if new_id is None:
            raise StoreError(f"The database gave no id to the message posted to {channel!r}.")
        self._purge_if_due()
        return int(new_id)

    def read(self, channel: str, after: int, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
        """The messages of ``channel`` with an id above ``after``, oldest first, at most
        ``limit``."""
        query = (
            select(mailbox.c.id, mailbox.c.body)
            .where(mailbox.c.channel == channel, mailbox.c.id > after)
            .order_by(mailbox.c.id)
            .limit(max(limit, 0))
        )
        with self._errors("read from"), self._engine.connect() as conn:
            rows = list(conn.execute(query))
        return [(int(row.id), _decode(str(row.body))) for row in rows]

    def drop(self, channel: str) -> int:
        """Delete the messages of ``channel`` and of every channel under ``channel/``; how
        many were deleted."""
        statement = delete(mailbox).where(
            or_(
                mailbox.c.channel == channel,
                mailbox.c.channel.startswith(channel + "/", autoescape=True),
            )
        )
        with self._errors("write to"), self._engine.begin() as conn:
            return int(conn.execute(statement).rowcount)

    def purge(self, older_than: float = MAX_AGE_S) -> int:
        """Delete every message posted more than ``older_than`` seconds ago; how many."""
        statement = delete(mailbox).where(mailbox.c.created_at < time.time() - older_than)
        with self._errors("write to"), self._engine.begin() as conn:
            return int(conn.execute(statement).rowcount)

    def _purge_if_due(self) -> None:
        now = time.monotonic()
        with self._purge_lock:
            if self._purged_at is not None and now - self._purged_at < PURGE_EVERY_S:
                return
            self._purged_at = now
        self.purge()


def _check_channel(channel: str) -> None:
    if not 1 <= len(channel) <= MAX_CHANNEL_LENGTH:
        raise ConfigurationError(
            f"A mailbox channel name has 1 to {MAX_CHANNEL_LENGTH} characters, "
            f"not {len(channel)}."
        )


def _encode(message: dict[str, Any]) -> str:
    if not isinstance(message, dict):
        raise ConfigurationError(
            f"A mailbox message is a JSON object (a dict), not {type(message).__name__}."
        )
    try:
        # ASCII only: a lone surrogate or a NUL is escaped, so every database keeps it.
        return json.dumps(message, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"A mailbox message must be JSON (dicts, lists, strings, finite numbers, "
            f"booleans, null): {exc}."
        ) from exc


def _decode(body: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise StoreError(f"A mailbox message in the database is not JSON: {exc}.") from exc
    if not isinstance(value, dict):
        raise StoreError("A mailbox message in the database is not a JSON object.")
    return value


__all__ = ["MAX_AGE_S", "PURGE_EVERY_S", "SqlMailbox"]
