"""Leads and what they told us: submissions, consents, status changes, notes."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import now
from core.columns import BigId, UTCDateTime
from core.db import Base
from core.vocabulary import INTERESTS, STATUSES

# STATUSES and INTERESTS are defined in core.vocabulary (campaign definitions check them); named here for leads.
__all__ = [
    "CONTACT_METHODS",
    "INTERESTS",
    "STATUSES",
    "UTM_FIELDS",
    "Consent",
    "Lead",
    "Note",
    "StatusChange",
    "Submission",
]

CONTACT_METHODS = {"email": "Email", "phone": "Phone call", "text": "Text message"}
# The UTM tags a visit's link may carry, kept on each submission (columns of the same names).
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


class Lead(Base):
    """A person who asked for a consultation; one row per normalized email."""

    __tablename__ = "leads"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # NULL once erased: the row stays for anonymous counts.
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    interest: Mapped[str | None] = mapped_column(String(16), index=True)
    preferred_contact: Mapped[str] = mapped_column(String(8), default="email")
    timezone: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="new")
    # First-touch attribution, copied from the first submission so lists filter without joins.
    source: Mapped[str] = mapped_column(String(100), default="direct")
    landing_slug: Mapped[str | None] = mapped_column(String(64))
    email_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    contacted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    submissions: Mapped[list[Submission]] = relationship(back_populates="lead", order_by="Submission.id")
    consents: Mapped[list[Consent]] = relationship(back_populates="lead", order_by="Consent.id")

    @property
    def display_name(self) -> str:
        """First and last name, or a placeholder once erased."""
        if self.erased_at:
            return f"Erased lead #{self.id}"
        return " ".join(part for part in (self.first_name, self.last_name) if part) or "(no name)"


class Submission(Base):
    """One post of the consultation form, kept with where it came from."""

    __tablename__ = "submissions"
    __table_args__ = (Index("ix_submissions_lead_created", "lead_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    landing_slug: Mapped[str] = mapped_column(String(64))
    # The headline variant of the page view that led here ('<experiment>:b'), carried back in a signed field.
    landing_variant: Mapped[str | None] = mapped_column(String(16))
    utm_source: Mapped[str | None] = mapped_column(String(100))
    utm_medium: Mapped[str | None] = mapped_column(String(100))
    utm_campaign: Mapped[str | None] = mapped_column(String(100))
    utm_term: Mapped[str | None] = mapped_column(String(100))
    utm_content: Mapped[str | None] = mapped_column(String(100))
    referrer: Mapped[str | None] = mapped_column(String(1000))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    interest: Mapped[str | None] = mapped_column(String(16))
    preferred_contact: Mapped[str | None] = mapped_column(String(8))
    # What this request gave; a repeat request never changes the lead's details until staff accept these.
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    details_accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    details_accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Health detail: shown behind login only, never mailed or logged.
    message: Mapped[str | None] = mapped_column(Text)
    email_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, index=True)

    lead: Mapped[Lead] = relationship(back_populates="submissions")


class Consent(Base):
    """A consent given or withdrawn, with the version of the wording shown."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id", ondelete="SET NULL"))
    purpose: Mapped[str] = mapped_column(String(32))  # email_marketing | privacy_notice
    version: Mapped[str] = mapped_column(String(32))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(32))  # form | confirm | unsubscribe | one_click | provider | admin
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    # Set when staff recorded it (a lifted suppression): who, and the reason they gave.
    actor: Mapped[str | None] = mapped_column(String(320))
    detail: Mapped[str | None] = mapped_column(String(500))

    lead: Mapped[Lead] = relationship(back_populates="consents")


class StatusChange(Base):
    """A lead's status moved; kept for the timeline and booking counts."""

    __tablename__ = "status_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    old_status: Mapped[str | None] = mapped_column(String(16))
    new_status: Mapped[str] = mapped_column(String(16), index=True)
    source: Mapped[str] = mapped_column(String(32))  # admin | api | cli
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, index=True)


class Note(Base):
    """A staff note on a lead."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class VariantView(Base):
    """Views of one landing page's headline variant on one day: the denominator of a headline test."""

    __tablename__ = "variant_views"
    __table_args__ = (UniqueConstraint("day", "landing_slug", "variant"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    landing_slug: Mapped[str] = mapped_column(String(64))
    variant: Mapped[str] = mapped_column(String(16))
    views: Mapped[int] = mapped_column(Integer, default=0)
