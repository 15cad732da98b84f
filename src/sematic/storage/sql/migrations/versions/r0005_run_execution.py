"""Add runs.execution: the pods a run ran in and what they reserved (JSON, nullable).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # batch_alter_table: SQLite adds a nullable column in place (no table copy).
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("execution", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("execution")
