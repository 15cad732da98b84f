"""Record each transition once: unique (run_id, state, at), so that a write sent again
(a client retrying after a lost answer, or a replica restarting) adds nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Copies a retried write may have left: the first one of each stays.
    op.execute(
        "DELETE FROM run_transitions WHERE id NOT IN "
        "(SELECT MIN(id) FROM run_transitions GROUP BY run_id, state, at)"
    )
    op.create_index(
        "ux_run_transitions_once", "run_transitions", ["run_id", "state", "at"], unique=True
    )
    # The unique index leads with run_id: it serves the lookups the old index served.
    op.drop_index("ix_run_transitions_run_id", "run_transitions")


def downgrade() -> None:
    op.create_index("ix_run_transitions_run_id", "run_transitions", ["run_id"])
    op.drop_index("ux_run_transitions_once", "run_transitions")
