"""Create mailbox: ordered channels of small JSON messages (warm workers and their driver).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Readers keep the last id they saw as a cursor, so an id must never come back:
    # AUTOINCREMENT on SQLite (a plain INTEGER PRIMARY KEY reuses the largest id once its
    # row is deleted); PostgreSQL's sequence never goes back.
    op.create_table(
        "mailbox",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_mailbox_channel_id", "mailbox", ["channel", "id"])
    op.create_index("ix_mailbox_created_at", "mailbox", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_mailbox_created_at", "mailbox")
    op.drop_index("ix_mailbox_channel_id", "mailbox")
    op.drop_table("mailbox")
