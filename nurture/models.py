"""Nurture state: enrollments, deliveries (the send ledger), campaign pauses, worker heartbeats."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import now
from core.columns import BigId, UTCDateTime
from core.db import Base

ENROLLMENT_STATES = ("pending", "active", "completed", "exited")
# pending: recorded, waiting for a worker | sending: claimed, provider call in flight |
# retrying: provider asked us to come back | sent/delivered: accepted | failed: refused, with reason |
# unknown: a worker died mid-send; never resent automatically | skipped: not sent, reason recorded.
DELIVERY_STATES = ("pending", "sending", "retrying", "sent", "delivered", "failed", "unknown", "skipped", "bounced")
DELIVERY_KINDS = ("nurture", "confirmation", "reminder", "test", "intake_alert", "digest")


class Enrollment(Base):
    """A lead's place in one campaign's sequence."""

    __tablename__ = "enrollments"
    __table_args__ = (UniqueConstraint("lead_id", "campaign_slug"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    campaign_slug: Mapped[str] = mapped_column(String(64), index=True)
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
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Delivery(Base):
    """One email we decided to send; its unique dedupe_key is what makes every send happen once."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_state_due", "state", "due_at"),
        Index("ix_deliveries_state_lease", "state", "lease_until"),
        Index("ix_deliveries_campaign_step", "campaign_slug", "step_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="nurture")
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"), index=True)
    campaign_slug: Mapped[str | None] = mapped_column(String(64))
    step_id: Mapped[str | None] = mapped_column(String(64))
    # Set only when the recipient is not the lead (staff alerts, test sends).
    recipient: Mapped[str | None] = mapped_column(String(320))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_message_id: Mapped[str | None] = mapped_column(String(128), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    # Who produced `error`: content (the email could not be built), provider (it answered), transport (no answer).
    error_source: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    open_count: Mapped[int] = mapped_column(Integer, default=0)
    click_count: Mapped[int] = mapped_column(Integer, default=0)


class DeliveryAction(Base):
    """Something a member of staff did to a delivery (queued it again, marked it sent), for the lead's timeline."""

    __tablename__ = "delivery_actions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # requeued | marked_sent
    previous_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(320))  # the staff member's sign-in email
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


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


class SystemFlag(Base):
    """A named switch shared by all processes, e.g. the provider pause after a 401."""

    __tablename__ = "system_flags"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)
