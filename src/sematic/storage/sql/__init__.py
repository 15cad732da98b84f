"""The metadata store on SQL databases (SQLite, PostgreSQL), migrated with Alembic."""

from sematic.storage.sql.store import SqlMetadataStore

__all__ = ["SqlMetadataStore"]
