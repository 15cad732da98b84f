"""Alembic migrations of the metadata schema; applied by ``sematic.storage.sql.migrate``."""
