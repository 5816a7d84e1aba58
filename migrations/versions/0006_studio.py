"""Campaign studio: campaigns with drafts and published versions in the database, an audit log, the content
revision every process checks, and each enrollment's last step id

Revision ID: 0006_studio
Revises: 0005_ux
Create Date: 2026-11-29 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_studio"
down_revision = "0005_ux"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "studio_campaigns",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("slug", sa.String(length=80), nullable=False),
        sa.Column("draft", sa.JSON(), nullable=False),
        sa.Column("draft_revision", sa.Integer(), nullable=False),
        sa.Column("draft_saved_by", sa.String(length=320), nullable=True),
        sa.Column("draft_saved_at", sa.DateTime(), nullable=False),
        sa.Column("live_version", sa.Integer(), nullable=True),
        sa.Column("archived_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studio_campaigns")),
        sa.UniqueConstraint("slug", name=op.f("uq_studio_campaigns_slug")),
    )
    op.create_table(
        "studio_versions",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("published_by", sa.String(length=320), nullable=True),
        sa.Column("published_at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["studio_campaigns.id"],
            name=op.f("fk_studio_versions_campaign_id_studio_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_studio_versions")),
        sa.UniqueConstraint("campaign_id", "number", name=op.f("uq_studio_versions_campaign_id_number")),
    )
    op.create_index(op.f("ix_studio_versions_campaign_id"), "studio_versions", ["campaign_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index(op.f("ix_audit_log_subject"), "audit_log", ["subject"])
    op.create_table(
        "content_revision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_revision")),
    )
    op.execute("INSERT INTO content_revision (id, revision) VALUES (1, 0)")
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(sa.Column("last_step_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("last_step_id")
    op.drop_table("content_revision")
    op.drop_index(op.f("ix_audit_log_subject"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index(op.f("ix_studio_versions_campaign_id"), table_name="studio_versions")
    op.drop_table("studio_versions")
    op.drop_table("studio_campaigns")
