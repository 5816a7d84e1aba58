"""The campaign store: each campaign's draft and its immutable published versions, the audit log, and one
revision number every process checks to know when published content changed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import now
from core.columns import BigId, UTCDateTime
from core.db import Base


class CampaignRecord(Base):
    """A campaign: its working draft (saved with a revision number) and which published version is live."""

    __tablename__ = "studio_campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    draft: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Bumped on every save: a save based on an older revision is a conflict, never a silent overwrite.
    draft_revision: Mapped[int] = mapped_column(Integer, default=1)
    draft_saved_by: Mapped[str | None] = mapped_column(String(320))
    draft_saved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    live_version: Mapped[int | None] = mapped_column(Integer)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    created_by: Mapped[str | None] = mapped_column(String(320))


class CampaignVersion(Base):
    """A published version: never changed once written; rolling back publishes an old one again as a new one."""

    __tablename__ = "studio_versions"
    __table_args__ = (UniqueConstraint("campaign_id", "number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("studio_campaigns.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_by: Mapped[str | None] = mapped_column(String(320))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    note: Mapped[str | None] = mapped_column(String(200))


class AuditEntry(Base):
    """Who changed what in the studio, and when (saves, publishes, roll-backs, archives, imports)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, index=True)
    actor: Mapped[str | None] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(120), index=True)
    detail: Mapped[str | None] = mapped_column(Text)


class ContentRevision(Base):
    """One row, bumped whenever published content changes: each process compares it to the one it holds."""

    __tablename__ = "content_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)


class PostRecord(Base):
    """A blog post: its working draft, the published version live now and, optionally, one scheduled to replace it.

    A scheduled version goes live on its own: whoever reads the post compares scheduled_at with the clock, so no
    job has to run at that moment.
    """

    __tablename__ = "blog_posts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    draft: Mapped[dict[str, Any]] = mapped_column(JSON)
    draft_revision: Mapped[int] = mapped_column(Integer, default=1)
    draft_saved_by: Mapped[str | None] = mapped_column(String(320))
    draft_saved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    live_version: Mapped[int | None] = mapped_column(Integer)
    live_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scheduled_version: Mapped[int | None] = mapped_column(Integer)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    created_by: Mapped[str | None] = mapped_column(String(320))

    def live_at(self, moment: datetime) -> tuple[int | None, datetime | None]:
        """The version live at this moment and since when (a due scheduled version wins)."""
        if self.scheduled_version is not None and self.scheduled_at is not None and _aware(self.scheduled_at) <= moment:
            return self.scheduled_version, _aware(self.scheduled_at)
        return self.live_version, _aware(self.live_since) if self.live_since else None


class PostVersion(Base):
    """A published version of a post: never changed once written."""

    __tablename__ = "blog_post_versions"
    __table_args__ = (UniqueConstraint("post_id", "number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("blog_posts.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_by: Mapped[str | None] = mapped_column(String(320))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    note: Mapped[str | None] = mapped_column(String(200))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class MediaImage(Base):
    """An uploaded picture (re-encoded, metadata stripped) with its description; served from every web server."""

    __tablename__ = "media_images"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # A hash of the re-encoded pixels: the same picture uploaded twice is stored once.
    key: Mapped[str] = mapped_column(String(32), unique=True)
    alt: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str | None] = mapped_column(String(320))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class MediaVariant(Base):
    """One size of an image, for `srcset` (the bytes, their type and the ETag they are served with)."""

    __tablename__ = "media_variants"
    __table_args__ = (UniqueConstraint("image_id", "width"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("media_images.id", ondelete="CASCADE"), index=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(40))
    etag: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)


class SiteSetting(Base):
    """A site setting changed in the admin; it wins over the environment variable of the same name."""

    __tablename__ = "site_settings"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str | None] = mapped_column(String(320))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
