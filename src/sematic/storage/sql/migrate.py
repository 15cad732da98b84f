"""Brings a database to the newest schema with Alembic; safe when processes race.

A database already at ``HEAD`` is recognized with a plain read, without importing Alembic
(half a second) and without waiting for writers. Otherwise the migrations run in one
transaction that first takes a database-wide lock, so a second process opening the same
database waits, then finds it at head and does nothing: PostgreSQL takes a
transaction-scoped advisory lock; SQLite opens the transaction with ``BEGIN IMMEDIATE`` (the
write lock, waited for up to the busy timeout). DDL is transactional on both, so a failed
migration leaves nothing behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from sematic.core.errors import ConfigurationError
from sematic.storage.sql.connect import SQLITE_BEGIN, mask

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The newest revision in migrations/versions; a test checks that they agree.
HEAD = "0008"
VERSION_TABLE = "alembic_version"
# Any constant will do; it only has to be the same for every process.
_PG_LOCK_KEY = 0x53454D41  # "SEMA"


def alembic_config() -> Config:
    """The Alembic configuration, built in code (there is no alembic.ini)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def current_revisions(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return set()
        rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
        return {str(version) for (version,) in rows}


def upgrade(engine: Engine) -> None:
    """Migrates the database of ``engine`` to head (a no-op when it is there already)."""
    if current_revisions(engine) == {HEAD}:
        return
    from alembic import command
    from alembic.util import CommandError

    config = alembic_config()
    locked = engine.execution_options(**{SQLITE_BEGIN: "BEGIN IMMEDIATE"})
    with locked.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, "head")
        except CommandError as exc:
            raise ConfigurationError(
                f"Cannot migrate the database {mask(engine.url)!r}: {exc}. It was probably "
                "created by a newer version of sematic: upgrade sematic or use another database."
            ) from exc
