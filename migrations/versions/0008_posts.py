"""Blog posts in the database (drafts, published and scheduled versions), uploaded images in their sizes, and the
site settings changed in the admin

Revision ID: 0008_posts
Revises: 0007_experiments
Create Date: 2026-11-29 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_posts"
down_revision = "0007_experiments"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "blog_posts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("slug", sa.String(length=80), nullable=False),
        sa.Column("draft", sa.JSON(), nullable=False),
        sa.Column("draft_revision", sa.Integer(), nullable=False),
        sa.Column("draft_saved_by", sa.String(length=320), nullable=True),
        sa.Column("draft_saved_at", sa.DateTime(), nullable=False),
        sa.Column("live_version", sa.Integer(), nullable=True),
        sa.Column("live_since", sa.DateTime(), nullable=True),
        sa.Column("scheduled_version", sa.Integer(), nullable=True),
        sa.Column("scheduled_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blog_posts")),
        sa.UniqueConstraint("slug", name=op.f("uq_blog_posts_slug")),
    )
    op.create_table(
        "blog_post_versions",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("post_id", BigId, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("published_by", sa.String(length=320), nullable=True),
        sa.Column("published_at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["post_id"], ["blog_posts.id"], name=op.f("fk_blog_post_versions_post_id_blog_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blog_post_versions")),
        sa.UniqueConstraint("post_id", "number", name=op.f("uq_blog_post_versions_post_id_number")),
    )
    op.create_index(op.f("ix_blog_post_versions_post_id"), "blog_post_versions", ["post_id"])
    op.create_table(
        "media_images",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("alt", sa.Text(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=320), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_images")),
        sa.UniqueConstraint("key", name=op.f("uq_media_images_key")),
    )
    op.create_table(
        "media_variants",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("image_id", BigId, nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("etag", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["media_images.id"], name=op.f("fk_media_variants_image_id_media_images"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_variants")),
        sa.UniqueConstraint("image_id", "width", name=op.f("uq_media_variants_image_id_width")),
    )
    op.create_index(op.f("ix_media_variants_image_id"), "media_variants", ["image_id"])
    op.create_table(
        "site_settings",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=320), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_site_settings")),
    )


def downgrade() -> None:
    op.drop_table("site_settings")
    op.drop_index(op.f("ix_media_variants_image_id"), table_name="media_variants")
    op.drop_table("media_variants")
    op.drop_table("media_images")
    op.drop_index(op.f("ix_blog_post_versions_post_id"), table_name="blog_post_versions")
    op.drop_table("blog_post_versions")
    op.drop_table("blog_posts")
