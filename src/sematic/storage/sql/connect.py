"""From a database URL to a configured engine, with errors that say what to do."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from sematic.core.errors import ConfigurationError
from sematic.core.files import FILE_MODE, private_folder

SUPPORTED = "sqlite:///path/to/db.sqlite or postgresql+psycopg://user:password@host:port/dbname"
BUSY_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_S = 10
# Execution option naming the statement that opens a SQLite transaction ("BEGIN IMMEDIATE"
# takes the write lock at once, so writers queue on busy_timeout instead of failing).
SQLITE_BEGIN = "sematic_sqlite_begin"

_PASSWORD = re.compile(r"(://[^/:@]*:)[^@/]*@")


def mask(url: str | URL) -> str:
    """The URL with its password replaced by ``***``, safe to show."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return _PASSWORD.sub(r"\1***@", url)


def parse(url: str) -> URL:
    """Parses and checks a URL; ``postgresql://`` means ``postgresql+psycopg://``."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(
            f"Cannot parse the database URL {mask(url)!r}; expected {SUPPORTED}."
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend not in ("sqlite", "postgresql"):
        raise ConfigurationError(f"Unsupported database URL {mask(parsed)!r}: use {SUPPORTED}.")
    return parsed


def create(url: URL) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout, foreign keys, its directory."""
    if url.get_backend_name() == "sqlite":
        return _create_sqlite(url)
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    try:
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigurationError(
            f"Cannot use {mask(url)!r}: its driver is not installed ({exc}). "
            "Install sematic-next[postgres] (psycopg 3) and use postgresql+psycopg://."
        ) from exc


def _create_sqlite(url: URL) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database).expanduser()
        try:
            private_folder(path.parent)
            # Created 0600 here, not by SQLite with the umask; its -wal and -shm files
            # then take the same mode.
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT, FILE_MODE))
        except OSError as exc:
            raise ConfigurationError(
                f"Cannot create the SQLite database {mask(url)!r} or its directory: {exc}. "
                "Choose a writable path."
            ) from exc
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (so that
        # DDL is transactional too); see the SQLAlchemy SQLite dialect documentation.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(connection.get_execution_options().get(SQLITE_BEGIN, "BEGIN"))

    return engine
