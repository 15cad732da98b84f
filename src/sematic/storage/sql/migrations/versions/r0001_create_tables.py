"""Create runs, run_transitions, artifacts and edges.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Frozen here on purpose: a migration must not change when the models do.
_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("root_id", sa.String(), nullable=False),
        sa.Column("parent_id", sa.String(), nullable=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("function_path", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("inline", sa.Boolean(), nullable=False),
        sa.Column("source_code", sa.Text(), nullable=True),
        sa.Column("docstring", sa.Text(), nullable=True),
        sa.Column("cache_key", sa.String(), nullable=True),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.Column("resource_requirements", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("base_image_tag", sa.String(), nullable=True),
        sa.Column("container_image", sa.String(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("output", sa.String(), nullable=True),
        sa.Column("nested_run_id", sa.String(), nullable=True),
        sa.Column("exception_type", sa.String(), nullable=True),
        sa.Column("exception_message", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("started_at", sa.Double(), nullable=True),
        sa.Column("ended_at", sa.Double(), nullable=True),
    )
    for column in ("root_id", "parent_id", "cache_key", "state", "name", "created_at"):
        op.create_index(f"ix_runs_{column}", "runs", [column])

    op.create_table(
        "run_transitions",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id",
            sa.String(),
            sa.ForeignKey("runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
    )
    op.create_index("ix_run_transitions_run_id", "run_transitions", ["run_id"])

    op.create_table(
        "artifacts",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("type_description", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
    )

    op.create_table(
        "edges",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("source_run_id", sa.String(), nullable=False),
        sa.Column("destination_run_id", sa.String(), nullable=False),
        sa.Column("parameter", sa.String(), nullable=False),
        sa.Column("artifact_id", sa.String(), sa.ForeignKey("artifacts.id"), nullable=False),
        sa.UniqueConstraint(
            "source_run_id",
            "destination_run_id",
            "parameter",
            "artifact_id",
            name="uq_edges_source_destination_parameter_artifact",
        ),
    )
    op.create_index("ix_edges_destination_run_id", "edges", ["destination_run_id"])


def downgrade() -> None:
    op.drop_table("edges")
    op.drop_table("artifacts")
    op.drop_table("run_transitions")
    op.drop_table("runs")
