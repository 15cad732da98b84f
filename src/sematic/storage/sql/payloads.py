"""Small payloads in the SQL database of a ``SqlMetadataStore`` (the ``small_payloads`` table).

A payload is a row, its artifact id and its bytes (``sematic.storage.packed`` decides which
payloads are small). Ids are content hashes, so the bytes stored under an id can only be
right or damaged: ``put_many`` inserts the rows missing and replaces a row whose bytes
differ (a damaged one is healed by storing it again), in one transaction; a row already
holding the same bytes is left alone, so storing again writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from sematic.storage.sql.connect import SQLITE_BEGIN
from sematic.storage.sql.models import small_payloads

# Turns database errors into the error tree (``SqlMetadataStore._errors``).
Guard = Callable[[str], AbstractContextManager[None]]
# Rows per statement: well below the bound-parameter limits of SQLite and PostgreSQL.
_CHUNK = 500


class SqlSmallPayloads:
    """The small payloads kept in the database of ``engine`` (already migrated)."""

    def __init__(self, engine: Engine, errors: Guard) -> None:
        # SQLite: the write lock at once, so that concurrent writers (workers, the resolver)
        # queue on the busy timeout instead of failing.
        self._writer = engine.execution_options(**{SQLITE_BEGIN: "BEGIN IMMEDIATE"})
        self._engine = engine
        self._errors = errors
        dialect_insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        insert = dialect_insert(small_payloads)
        self._upsert = insert.on_conflict_do_update(
            index_elements=[small_payloads.c.id],
            set_={"data": insert.excluded.data},
            where=small_payloads.c.data != insert.excluded.data,
        )

    def put_many(self, payloads: Mapping[str, bytes]) -> None:
        """Store each payload under its id, in one transaction (see the module)."""
        if not payloads:
            return
        rows = [{"id": key, "data": bytes(data)} for key, data in payloads.items()]
        with self._errors("write to"), self._writer.begin() as conn:
            for start in range(0, len(rows), _CHUNK):
                conn.execute(self._upsert, rows[start : start + _CHUNK])

    def get(self, artifact_id: str) -> bytes | None:
        """The bytes stored under ``artifact_id``, or None."""
        query = select(small_payloads.c.data).where(small_payloads.c.id == artifact_id)
        with self._errors("read from"), self._engine.connect() as conn:
            data = conn.execute(query).scalar()
        return None if data is None else bytes(data)

    def get_many(self, ids: Collection[str]) -> dict[str, bytes]:
        """The bytes stored under each of ``ids`` (the ones absent are left out)."""
        found: dict[str, bytes] = {}
        wanted = sorted(set(ids))
        with self._errors("read from"), self._engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                query = select(small_payloads.c.id, small_payloads.c.data).where(
                    small_payloads.c.id.in_(chunk)
                )
                found.update((str(row.id), bytes(row.data)) for row in conn.execute(query))
        return found

    def exists(self, artifact_id: str) -> bool:
        query = select(small_payloads.c.id).where(small_payloads.c.id == artifact_id)
        with self._errors("read from"), self._engine.connect() as conn:
            return conn.execute(query).first() is not None

    def discard(self, ids: Collection[str]) -> None:
        """Delete the rows of ``ids`` (those absent are ignored), in one transaction. Looks
        first, without locking: when none is there (the usual case), nothing is written."""
        present = self._present(ids)
        if not present:
            return
        with self._errors("write to"), self._writer.begin() as conn:
            for start in range(0, len(present), _CHUNK):
                chunk = present[start : start + _CHUNK]
                conn.execute(delete(small_payloads).where(small_payloads.c.id.in_(chunk)))

    def _present(self, ids: Collection[str]) -> list[str]:
        wanted = sorted(set(ids))
        found: list[str] = []
        if not wanted:
            return found
        with self._errors("read from"), self._engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                query = select(small_payloads.c.id).where(small_payloads.c.id.in_(chunk))
                found.extend(str(row.id) for row in conn.execute(query))
        return found


__all__ = ["SqlSmallPayloads"]
