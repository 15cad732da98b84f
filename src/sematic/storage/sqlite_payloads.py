"""The small payloads of a SQLite database through the standard library's ``sqlite3``: for
worker processes on the resolver's machine, which would otherwise import SQLAlchemy only
to read their packed inputs and pack their output (importing it costs a worker more than
everything else it imports). The database was opened, and so migrated, by the resolver;
its table is ``small_payloads`` (``sematic.storage.sql.models``), read and written as
``sematic.storage.sql.payloads.SqlSmallPayloads`` does (a test runs both through the
same checks).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager

from sematic.core.errors import InfrastructureError, StoreError

_PREFIX = "sqlite:///"
_BUSY_TIMEOUT_S = 10.0  # as ``sematic.storage.sql.connect.BUSY_TIMEOUT_MS``
_CHUNK = 500
_UPSERT = (
    "INSERT INTO small_payloads (id, data) VALUES (?, ?) "
    "ON CONFLICT (id) DO UPDATE SET data = excluded.data WHERE data != excluded.data"
)


def sqlite_path(url: str) -> str | None:
    """The file of a plain SQLite URL (``sqlite:///path``, no query), else None."""
    if not url.startswith(_PREFIX) or "?" in url or "#" in url:
        return None
    path = url.removeprefix(_PREFIX)
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return os.path.expanduser(path)


class SqliteSmallPayloads:
    """The small payloads in the SQLite file at ``path`` (already migrated)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._local = threading.local()  # a connection per thread

    def __repr__(self) -> str:
        return f"SqliteSmallPayloads({self._path!r})"

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def put_many(self, payloads: Mapping[str, bytes]) -> None:
        rows = [(key, bytes(data)) for key, data in payloads.items()]
        if not rows:
            return
        with self._transaction("write to") as connection:
            connection.executemany(_UPSERT, rows)

    def get(self, artifact_id: str) -> bytes | None:
        with self._reading() as connection:
            row = connection.execute(
                "SELECT data FROM small_payloads WHERE id = ?", (artifact_id,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def exists(self, artifact_id: str) -> bool:
        with self._reading() as connection:
            row = connection.execute(
                "SELECT 1 FROM small_payloads WHERE id = ?", (artifact_id,)
            ).fetchone()
        return row is not None

    def discard(self, ids: Collection[str]) -> None:
        wanted = sorted(set(ids))
        present: list[str] = []
        with self._reading() as connection:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT id FROM small_payloads WHERE id IN ({marks})"
                present.extend(str(row[0]) for row in connection.execute(query, chunk))
        if not present:
            return
        with self._transaction("write to") as connection:
            connection.executemany(
                "DELETE FROM small_payloads WHERE id = ?", ((i,) for i in present)
            )

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # Autocommit: transactions are begun explicitly (BEGIN IMMEDIATE for writes).
            connection = sqlite3.connect(self._path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
            self._local.connection = connection
        return connection

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._errors("read from"):
            yield self._connection()

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        with self._errors(doing):
            connection = self._connection()
            connection.execute("BEGIN IMMEDIATE")  # the write lock at once, waited for
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise InfrastructureError(
                f"Cannot {doing} the small payloads of the SQLite database {self._path}: {exc}"
            ) from exc
        except sqlite3.Error as exc:
            raise StoreError(
                f"Cannot {doing} the small payloads of the SQLite database {self._path}: {exc}"
            ) from exc


__all__ = ["SqliteSmallPayloads", "sqlite_path"]
