"""Nurture state: enrollments, campaign pauses, worker heartbeats (the deliveries ledger is the mailer's)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import now
from core.columns import BigId, UTCDateTime
from core.db import Base

ENROLLMENT_STATES = ("pending", "active", "completed", "exited")


class Enrollment(Base):
    """A lead's place in one campaign's sequence."""

    __tablename__ = "enrollments"
    __table_args__ = (UniqueConstraint("lead_id", "campaign_slug"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    campaign_slug: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    next_step: Mapped[int] = mapped_column(Integer, default=0)
    # NULL unless the enrollment is active and has a step to send: the tick's index only sees due work.
    next_send_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_reason: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_step_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The id of the last step recorded: a lead continues after it in whichever version is published (by id, not
    # by position, so inserting or removing steps elsewhere never repeats or skips one).
    last_step_id: Mapped[str | None] = mapped_column(String(64))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CampaignState(Base):
    """Operator switches for a campaign defined in files (the files stay the source of its content)."""

    __tablename__ = "campaign_states"

    slug: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_by: Mapped[str | None] = mapped_column(String(320))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)


class WorkerHeartbeat(Base):
    """The last sign of life of a nurture worker, shown on /healthz and the dashboard."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, index=True)
    last_tick: Mapped[str | None] = mapped_column(Text)  # JSON counts of the last tick
