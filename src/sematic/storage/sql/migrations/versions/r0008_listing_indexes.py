"""Index runs for listing them newest first at scale: each filter (none, state, name,
submitted_by) by ``(filter, created_at, id)``, the same for root runs only (partial indexes
on ``id = root_id``), and a pipeline's runs that ran in pods (partial, on ``execution IS NOT
NULL``). The single-column indexes on state, name, created_at and submitted_by are replaced.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_REPLACED = {
    "ix_runs_created_at": ["created_at"],
    "ix_runs_state": ["state"],
    "ix_runs_name": ["name"],
    "ix_runs_submitted_by": ["submitted_by"],
}
_FULL = {
    "ix_runs_created_at_id": ["created_at", "id"],
    "ix_runs_state_created_at_id": ["state", "created_at", "id"],
    "ix_runs_name_created_at_id": ["name", "created_at", "id"],
    "ix_runs_submitted_by_created_at_id": ["submitted_by", "created_at", "id"],
}
_ROOTS = {
    "ix_roots_created_at_id": ["created_at", "id"],
    "ix_roots_state_created_at_id": ["state", "created_at", "id"],
    "ix_roots_name_created_at_id": ["name", "created_at", "id"],
    "ix_roots_submitted_by_created_at_id": ["submitted_by", "created_at", "id"],
}
_IN_PODS = {"ix_runs_in_pods_root_id": ["root_id", "created_at", "id"]}


def _partial(name: str, columns: list[str], condition: str) -> None:
    where = sa.text(condition)
    op.create_index(name, "runs", columns, sqlite_where=where, postgresql_where=where)


def upgrade() -> None:
    for name in _REPLACED:
        op.drop_index(name, "runs")
    for name, columns in _FULL.items():
        op.create_index(name, "runs", columns)
    for name, columns in _ROOTS.items():
        _partial(name, columns, "id = root_id")
    for name, columns in _IN_PODS.items():
        _partial(name, columns, "execution IS NOT NULL")


def downgrade() -> None:
    for name in (*_IN_PODS, *_ROOTS, *_FULL):
        op.drop_index(name, "runs")
    for name, columns in _REPLACED.items():
        op.create_index(name, "runs", columns)
