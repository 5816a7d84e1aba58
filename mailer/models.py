"""The deliveries ledger (every email the system sends, of every kind), the suppression list, the provider's
events and the flags every process reads before sending."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import now
from core.columns import BigId, UTCDateTime
from core.db import Base

# pending: recorded, waiting for a worker | sending: claimed, provider call in flight |
# retrying: provider asked us to come back | sent/delivered: accepted | failed: refused, with reason |
# unknown: a worker died mid-send; never resent automatically | skipped: not sent, reason recorded.
DELIVERY_STATES = ("pending", "sending", "retrying", "sent", "delivered", "failed", "unknown", "skipped", "bounced")
DELIVERY_KINDS = ("nurture", "confirmation", "reminder", "test", "intake_alert", "digest")
SUPPRESSION_REASONS = ("unsubscribe", "bounce", "dropped", "spamreport", "group_unsubscribe", "manual")


def email_hash(email: str) -> str:
    """A stable hash of a normalized address, kept after erasure so a bounced address stays blocked."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


class Suppression(Base):
    """An address we must not email, with why and who said so."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))  # link | one_click | provider | admin | cli
    detail: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, index=True)


class ProviderEvent(Base):
    """A SendGrid event, stored once per sg_event_id."""

    __tablename__ = "provider_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sg_event_id: Mapped[str] = mapped_column(String(128), unique=True)
    event: Mapped[str] = mapped_column(String(32), index=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    url: Mapped[str | None] = mapped_column(String(1000))
    reason: Mapped[str | None] = mapped_column(String(500))


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
    # The A/B variant of the step this lead was assigned ('a', 'b'...; None when the step tests nothing).
    variant: Mapped[str | None] = mapped_column(String(16))
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


class SystemFlag(Base):
    """A named switch shared by all processes, e.g. the provider pause after a 401."""

    __tablename__ = "system_flags"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)
