"""Create small_payloads (values under the packing threshold, kept in the database rather
than one file or object each) and index runs by parent, function and state (a pipeline's
graph folds and counts its sibling groups with it).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # WITHOUT ROWID on SQLite: the row lives in the primary key's b-tree, so a small value
    # costs its id and its bytes once, not a second copy of the id in an index.
    op.create_table(
        "small_payloads",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_runs_parent_function_state", "runs", ["parent_id", "function_path", "state"]
    )


def downgrade() -> None:
    op.drop_index("ix_runs_parent_function_state", "runs")
    op.drop_table("small_payloads")
