"""Create small_payloads (values under the packing threshold, kept in the database rather
than one file or object each); index runs by root, parent, function and state, with their
times (a pipeline's graph folds, counts and times its sibling sets from that index alone);
index edges by destination with every column (its edges are read from that index alone).

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
        "ix_runs_root_parent_function_state",
        "runs",
        [
            "root_id",
            "parent_id",
            "function_path",
            "state",
            "created_at",
            "id",
            "started_at",
            "ended_at",
        ],
    )
    # A pipeline's edges, read from the index alone (its graph merges them by node).
    op.create_index(
        "ix_edges_destination_covering",
        "edges",
        ["destination_run_id", "source_run_id", "parameter", "artifact_id"],
    )
    op.drop_index("ix_edges_destination_run_id", "edges")


def downgrade() -> None:
    op.create_index("ix_edges_destination_run_id", "edges", ["destination_run_id"])
    op.drop_index("ix_edges_destination_covering", "edges")
    op.drop_index("ix_runs_root_parent_function_state", "runs")
    op.drop_table("small_payloads")
