"""Create api_keys (named, per-user keys, stored hashed); add runs.submitted_by.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # key_hash is the sha256 hex digest of the key: keys are 32 random bytes
    # (secrets.token_urlsafe), so a plain fast hash cannot be reversed or guessed, and it
    # lets a request be authenticated by one indexed lookup. The key itself is never kept.
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("key_hash", sa.String(), nullable=False, unique=True),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("revoked_at", sa.Double(), nullable=True),
    )
    # batch_alter_table: SQLite adds a nullable column in place (no table copy).
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("submitted_by", sa.String(), nullable=True))
    op.create_index("ix_runs_submitted_by", "runs", ["submitted_by"])


def downgrade() -> None:
    op.drop_index("ix_runs_submitted_by", "runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("submitted_by")
    op.drop_table("api_keys")
