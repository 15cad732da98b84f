"""Read queries the API needs and ``SqlMetadataStore`` does not offer (yet).

Filtered, paginated run listings and artifacts by a set of ids. They belong in the store;
until they move there, this module opens its own engine on the store's URL (the schema is
the store's, already migrated) and uses the table objects of ``sematic.storage.sql.models``.
Every filter, the ordering, ``LIMIT`` and ``OFFSET`` run in SQL, on indexed columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, cast, exists, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from sematic.core.errors import InfrastructureError, StoreError
from sematic.core.records import ArtifactRecord, RunRecord
from sematic.storage.sql import connect, convert
from sematic.storage.sql.models import artifacts, runs

# Ids per IN (...) clause: well below the bound-parameter limits of SQLite and PostgreSQL.
_CHUNK = 500


@dataclass(frozen=True)
class RunFilter:
    """Which runs to list; ``None`` means no condition on that field."""

    state: str | None = None
    name: str | None = None
    tag: str | None = None
    root_only: bool = False


@dataclass(frozen=True)
class RunPage:
    runs: list[RunRecord]
    total: int


class Queries:
    """Queries on the database at ``url``, through an engine of their own (``close`` it)."""

    def __init__(self, url: URL) -> None:
        self._engine = connect.create(url)
        self._postgres = self._engine.dialect.name == "postgresql"

    def close(self) -> None:
        self._engine.dispose()

    def list_runs(self, where: RunFilter, *, limit: int, offset: int) -> RunPage:
        """One page of matching runs, newest first, and how many match in all."""
        conditions = self._conditions(where)
        page: Select[Any] = (
            select(runs)
            .where(*conditions)
            .order_by(runs.c.created_at.desc(), runs.c.id)
            .limit(limit)
            .offset(offset)
        )
        count = select(func.count()).select_from(runs).where(*conditions)
        with self._reading() as conn:
            rows: list[Any] = list(conn.execute(page).mappings())
            total = int(conn.execute(count).scalar_one())
        return RunPage(runs=[convert.run_record(row) for row in rows], total=total)

    def artifacts(self, ids: Iterable[str]) -> list[ArtifactRecord]:
        """The artifacts among ``ids`` that are recorded, ordered by id."""
        wanted = sorted(set(ids))
        found: list[ArtifactRecord] = []
        with self._reading() as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                query = select(artifacts).where(artifacts.c.id.in_(chunk))
                rows: list[Any] = list(conn.execute(query).mappings())
                found.extend(convert.artifact_record(row) for row in rows)
        found.sort(key=lambda artifact: artifact.id)
        return found

    def _conditions(self, where: RunFilter) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if where.state is not None:
            conditions.append(runs.c.state == where.state)
        if where.name is not None:
            conditions.append(runs.c.name == where.name)
        if where.root_only:
            conditions.append(runs.c.id == runs.c.root_id)
        if where.tag is not None:
            conditions.append(self._has_tag(where.tag))
        return conditions

    def _has_tag(self, tag: str) -> ColumnElement[bool]:
        if self._postgres:
            return cast(runs.c.tags, JSONB).contains([tag])
        elements = func.json_each(runs.c.tags).table_valued("value")
        return exists(select(literal(1)).select_from(elements).where(elements.c.value == tag))

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection for a few reads; database errors become the store's error types."""
        try:
            with self._engine.connect() as conn:
                yield conn
        except (OperationalError, InterfaceError) as exc:
            raise InfrastructureError(
                f"Cannot read from the metadata store: {_reason(exc)}"
            ) from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"Cannot read from the metadata store: {_reason(exc)}") from exc


def _reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return " ".join(str(orig if orig is not None else exc).split())
