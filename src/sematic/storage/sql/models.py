"""The tables, as typed SQLAlchemy models. The schema itself is created by the migrations.

Column names match the fields of the records in ``sematic.core.records`` so that rows and
records convert field by field. In ``edges``, a missing run id or parameter is stored as
``''`` (never NULL) so that the unique constraint over the four columns holds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# BIGINT on PostgreSQL; INTEGER on SQLite, where only "INTEGER PRIMARY KEY" autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")


# The conditions of the partial indexes; queries state them the same way.
ROOTS = "id = root_id"
IN_PODS = "execution IS NOT NULL"


def _where(condition: str) -> dict[str, Any]:
    """A partial index's condition, for both dialects."""
    return {"sqlite_where": text(condition), "postgresql_where": text(condition)}


class Base(DeclarativeBase):
    pass


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_root_id", "root_id"),
        Index("ix_runs_parent_id", "parent_id"),
        Index("ix_runs_cache_key", "cache_key"),
        Index("ix_runs_updated_at", "updated_at"),
        Index(
            "ix_runs_root_parent_function_state",
            "root_id",
            "parent_id",
            "function_path",
            "state",
            # A set's runs in one state, oldest first; covering: a set's first creation,
            # first start and last end, and its durations.
            "created_at",
            "id",
            "started_at",
            "ended_at",
        ),
        # Listing (newest first, ties by id): each filter's index also gives the order.
        Index("ix_runs_created_at_id", "created_at", "id"),
        Index("ix_runs_state_created_at_id", "state", "created_at", "id"),
        Index("ix_runs_name_created_at_id", "name", "created_at", "id"),
        Index("ix_runs_submitted_by_created_at_id", "submitted_by", "created_at", "id"),
        # The same for root runs only (a few in a thousand runs: small indexes).
        *(
            Index(f"ix_roots_{'_'.join(columns)}", *columns, **_where(ROOTS))
            for columns in (
                ("created_at", "id"),
                ("state", "created_at", "id"),
                ("name", "created_at", "id"),
                ("submitted_by", "created_at", "id"),
            )
        ),
        # The runs of a pipeline that ran in pods (what ``sematic runs`` sums).
        Index("ix_runs_in_pods_root_id", "root_id", "created_at", "id", **_where(IN_PODS)),
    )

    id: Mapped[str] = mapped_column(String, primary_key=True)
    root_id: Mapped[str] = mapped_column(String)
    parent_id: Mapped[str | None] = mapped_column(String)
    name: Mapped[str] = mapped_column(String)
    function_path: Mapped[str] = mapped_column(String)
    state: Mapped[str] = mapped_column(String)
    created_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)
    inline: Mapped[bool] = mapped_column(Boolean)
    source_code: Mapped[str | None] = mapped_column(Text)
    docstring: Mapped[str | None] = mapped_column(Text)
    cache_key: Mapped[str | None] = mapped_column(String)
    cache_hit: Mapped[bool] = mapped_column(Boolean)
    resource_requirements: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    base_image_tag: Mapped[str | None] = mapped_column(String)
    container_image: Mapped[str | None] = mapped_column(String)
    tags: Mapped[list[str]] = mapped_column(JSON)
    inputs: Mapped[dict[str, str]] = mapped_column(JSON)
    output: Mapped[str | None] = mapped_column(String)
    nested_run_id: Mapped[str | None] = mapped_column(String)
    exception_type: Mapped[str | None] = mapped_column(String)
    exception_message: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[float | None] = mapped_column(Double)
    ended_at: Mapped[float | None] = mapped_column(Double)
    submitted_by: Mapped[str | None] = mapped_column(String)
    execution: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class TransitionRow(Base):
    __tablename__ = "run_transitions"
    # Each transition once: a write sent again adds nothing.
    __table_args__ = (Index("ux_run_transitions_once", "run_id", "state", "at", unique=True),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String, ForeignKey("runs.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String)
    at: Mapped[float] = mapped_column(Double)


class ArtifactRow(Base):
    __tablename__ = "artifacts"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    type_description: Mapped[dict[str, Any]] = mapped_column(JSON)
    # JSON null is a valid summary: stored as the JSON text 'null', not SQL NULL.
    summary: Mapped[Any] = mapped_column(JSON)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Double)


class EdgeRow(Base):
    __tablename__ = "edges"
    __table_args__ = (
        UniqueConstraint(
            "source_run_id",
            "destination_run_id",
            "parameter",
            "artifact_id",
            name="uq_edges_source_destination_parameter_artifact",
        ),
        # Covering: a pipeline's edges are read through it, without touching the table.
        Index(
            "ix_edges_destination_covering",
            "destination_run_id",
            "source_run_id",
            "parameter",
            "artifact_id",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_run_id: Mapped[str] = mapped_column(String)
    destination_run_id: Mapped[str] = mapped_column(String)
    parameter: Mapped[str] = mapped_column(String)
    artifact_id: Mapped[str] = mapped_column(String, ForeignKey("artifacts.id"))


class CancelRequestRow(Base):
    """Someone asked to cancel the pipeline of ``root_id``; its resolver stops it."""

    __tablename__ = "cancel_requests"

    root_id: Mapped[str] = mapped_column(String, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[float] = mapped_column(Double)


class ApiKeyRow(Base):
    """An API key of a team server: only the sha256 of the key is kept, never the key."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    user: Mapped[str] = mapped_column(String)
    name: Mapped[str] = mapped_column(String)
    key_hash: Mapped[str] = mapped_column(String, unique=True)
    role: Mapped[str] = mapped_column(String)
    created_at: Mapped[float] = mapped_column(Double)
    revoked_at: Mapped[float | None] = mapped_column(Double)


class MailboxRow(Base):
    """A message of a mailbox channel (``sematic.storage.sql.mailbox``): ``body`` is its
    JSON. Ids only increase (AUTOINCREMENT on SQLite: an id is never used again, even
    after the newest message was deleted), so a reader's cursor is the last id it saw."""

    __tablename__ = "mailbox"
    __table_args__ = (
        Index("ix_mailbox_channel_id", "channel", "id"),
        Index("ix_mailbox_created_at", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Double)


class SmallPayloadRow(Base):
    """The bytes of a value under the packing threshold (``sematic.storage.packed``),
    by artifact id: kept here rather than as one file or object each."""

    __tablename__ = "small_payloads"
    __table_args__ = ({"sqlite_with_rowid": False},)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


# The same tables for Core statements (bulk writes and reads never build ORM objects).
runs = Base.metadata.tables["runs"]
run_transitions = Base.metadata.tables["run_transitions"]
artifacts = Base.metadata.tables["artifacts"]
edges = Base.metadata.tables["edges"]
cancel_requests = Base.metadata.tables["cancel_requests"]
api_keys = Base.metadata.tables["api_keys"]
mailbox = Base.metadata.tables["mailbox"]
small_payloads = Base.metadata.tables["small_payloads"]
