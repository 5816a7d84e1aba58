"""A/B tests: the variant a delivery used, the headline variant a signup saw, views per headline variant

Revision ID: 0007_experiments
Revises: 0006_studio
Create Date: 2026-11-29 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_experiments"
down_revision = "0006_studio"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("variant", sa.String(length=16), nullable=True))
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("landing_variant", sa.String(length=16), nullable=True))
    op.create_table(
        "variant_views",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("landing_slug", sa.String(length=64), nullable=False),
        sa.Column("variant", sa.String(length=16), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_variant_views")),
        sa.UniqueConstraint("day", "landing_slug", "variant", name=op.f("uq_variant_views_day_landing_slug_variant")),
    )


def downgrade() -> None:
    op.drop_table("variant_views")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("landing_variant")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("variant")
