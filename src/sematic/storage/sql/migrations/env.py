"""Alembic environment: migrates the connection handed over by ``migrate.upgrade``.

Run from the alembic command line (to write a new revision), it connects to
``sqlalchemy.url`` instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from sematic.storage.sql.models import Base


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if isinstance(_connection, Connection):
    _run(_connection)
else:
    _url = context.config.get_main_option("sqlalchemy.url")
    if not _url:
        raise RuntimeError("set sqlalchemy.url (alembic -x or alembic.ini) to run migrations")
    _engine = create_engine(_url)
    try:
        with _engine.begin() as _conn:
            _run(_conn)
    finally:
        _engine.dispose()
