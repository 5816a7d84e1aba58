"""The suppression list and the provider's events."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import now
from core.columns import BigId, UTCDateTime
from core.db import Base

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
