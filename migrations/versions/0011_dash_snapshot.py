"""The dashboard's figures kept in the database, shared by every process and refreshed by the nurture worker

Revision ID: 0011_dash_snapshot
Revises: 0010_lean_indexes
Create Date: 2026-11-29 15:00:00

A new table only: nothing is copied, so SQLite's batch mode (and the foreign keys core.db.migrating switches
off for it) plays no part. The table starts empty; the first view of each period computes its row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_dash_snapshot"
down_revision = "0010_lean_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_snapshots",
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("campaign", sa.String(length=64), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("days", "campaign", "timezone", name=op.f("pk_dashboard_snapshots")),
    )


def downgrade() -> None:
    op.drop_table("dashboard_snapshots")
