"""Bulk INSERTs compiled once by SQLAlchemy, then run with the driver's ``executemany``.

Writes are the hot path (one per state change), and SQLAlchemy's per-statement machinery
costs more than SQLite itself. So the SQL text comes from SQLAlchemy, compiled once for the
engine's dialect, and values are converted with the same bind processors SQLAlchemy would
use (JSON serialization included); only the execution skips SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy import Engine, Select, Table
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.dml import Insert

Batch = tuple["BulkInsert", list[dict[str, Any]]]
Query = Callable[["PreparedSelect", dict[str, Any]], list[Any]]
"""Runs a SELECT with these values inside the write's transaction, before its inserts;
returns the rows."""


class PreparedSelect:
    """A SELECT compiled once for the engine's dialect (compiling costs ~0.5 ms a time)."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self._positions = compiled.positiontup

    def parameters(self, values: dict[str, Any]) -> Any:
        if self._positions is None:
            return values
        return tuple(values[key] for key in self._positions)


class BulkInsert:
    """One INSERT statement over ``keys``, ready for ``cursor.executemany``."""

    def __init__(self, statement: Insert, keys: Sequence[str], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.sql = compiled.string
        table = statement.table
        assert isinstance(table, Table)
        self._processors = []
        for key in keys:
            processor = table.c[key].type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self._processors.append((key, processor))
        # Positional paramstyles (SQLite's qmark) take tuples; named ones (psycopg) dicts.
        self._positions = compiled.positiontup

    def parameters(self, rows: list[dict[str, Any]]) -> list[Any]:
        for row in rows:
            for key, processor in self._processors:
                row[key] = processor(row[key])
        if self._positions is None:
            return rows
        positions = self._positions
        return [tuple(row[key] for key in positions) for row in rows]


def execute(engine: Engine, plan: Callable[[Query], Sequence[Batch]]) -> None:
    """Runs every non-empty batch of ``plan`` in one transaction on a pooled driver connection.

    ``plan`` gets a function that runs SELECTs in that transaction (after SQLite's write
    lock is taken), so that what it writes can depend on what is stored. Raises the
    driver's exception after rolling back; a connection that cannot even roll back is
    discarded from the pool.
    """
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            if engine.dialect.name == "sqlite":
                # The write lock at once: concurrent writers queue on busy_timeout.
                cursor.execute("BEGIN IMMEDIATE")
            batches = plan(lambda select, values: _select(cursor, select, values))
            with _pipeline(engine, connection.driver_connection):
                for insert, rows in batches:
                    if rows:
                        cursor.executemany(insert.sql, insert.parameters(rows))
        finally:
            cursor.close()
        connection.commit()
    except BaseException:
        try:
            connection.rollback()
        except Exception:  # noqa: BLE001 - the original error matters, not this one
            connection.invalidate()
        raise
    finally:
        connection.close()


def _select(cursor: Any, select: PreparedSelect, values: dict[str, Any]) -> list[Any]:
    cursor.execute(select.sql, select.parameters(values))
    return list(cursor.fetchall())


def _pipeline(engine: Engine, driver_connection: Any) -> AbstractContextManager[Any]:
    """psycopg's pipeline mode: all statements in one round trip instead of one each."""
    if engine.dialect.driver == "psycopg":
        pipeline: AbstractContextManager[Any] = driver_connection.pipeline()
        return pipeline
    return nullcontext()
