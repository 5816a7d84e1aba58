"""Consents recorded by staff (a lifted suppression) keep who did it and why

Revision ID: 0005_ux
Revises: 0004_hardening_b
Create Date: 2026-12-01 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_ux"
down_revision = "0004_hardening_b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.add_column(sa.Column("actor", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("detail", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.drop_column("detail")
        batch.drop_column("actor")
