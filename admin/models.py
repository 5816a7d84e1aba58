"""Staff accounts for the marketing workspace."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import JSON, Boolean, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

# Registers the leads search index, built with the leads table (its after_create event).
import admin.search  # noqa: F401
from core.clock import now
from core.columns import BigId, UTCDateTime
from core.db import Base
from leads.models import Lead, Submission
from mailer.models import Delivery
from nurture.models import Enrollment

ROLES = ("admin", "marketer")


def new_session_token() -> str:
    """A fresh random value for User.session_token."""
    return secrets.token_hex(16)


class User(UserMixin, Base):
    """A member of staff who signs in to /admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="marketer")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Part of the id every session and remember-me cookie carries: replacing it ends all of them at once.
    session_token: Mapped[str] = mapped_column(String(32), default=new_session_token)

    def get_id(self) -> str:
        """Flask-Login's id in cookies: the user's id and current session token ("12:9f2c...")."""
        return f"{self.id}:{self.session_token}"

    def end_sessions(self) -> None:
        """Sign this user out everywhere (every browser, remember-me cookies too)."""
        self.session_token = new_session_token()

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        """Deactivated users cannot sign in."""
        return self.active

    @property
    def is_admin(self) -> bool:
        """Admins may erase leads and manage users."""
        return self.role == "admin"


class DashboardSnapshot(Base):
    """The dashboard's figures for one period, campaign and time zone, shared by every process (admin.snapshots).

    Counts only (no lead's data), without the alerts, which each view reads afresh.
    """

    __tablename__ = "dashboard_snapshots"

    days: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign: Mapped[str] = mapped_column(String(64), primary_key=True)  # "" for every campaign
    timezone: Mapped[str] = mapped_column(String(64), primary_key=True)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The last view of these figures (written at most once a minute; None: computed by hand, never viewed).
    # The worker keeps recently viewed ones fresh.
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def _admin_indexes() -> None:
    """Indexes on other packages' tables that the admin's lists and dashboard need at 100,000+ leads."""
    # The call-back queue: new leads nobody has contacted, oldest first (the leads page's default order).
    waiting = text("status = 'new' AND contacted_at IS NULL AND erased_at IS NULL")
    Index("ix_leads_waiting", Lead.created_at, sqlite_where=waiting, postgresql_where=waiting)
    # The same queue counted for one campaign without reading rows.
    Index(
        "ix_leads_waiting_landing",
        Lead.landing_slug,
        Lead.created_at,
        sqlite_where=waiting,
        postgresql_where=waiting,
    )
    Index("ix_leads_erased_at", Lead.erased_at)
    # These also serve lookups on their first column alone (status, landing_slug, source...), which therefore have
    # no index of their own: each one more index is one more write per signup (migration 0010).
    # A status filter's leads newest (or oldest) first: one walk of the status's part, no sort.
    Index("ix_leads_status_created", Lead.status, Lead.created_at, Lead.id)
    # A campaign's leads in a date range, counted from the index alone (the list filter and the dashboard).
    Index("ix_leads_landing_created", Lead.landing_slug, Lead.created_at, Lead.erased_at)
    # Columns in GROUP BY order: the dashboard's funnel and top sources in one scan with no sort, seeking
    # each (source, status, opt-in) group's period when SQLite has statistics (skip-scan).
    Index("ix_leads_funnel", Lead.source, Lead.status, Lead.email_opt_in, Lead.created_at, Lead.landing_slug)
    # The dashboard's UTM campaigns: grouped in index order, the period read from the index.
    Index(
        "ix_submissions_utm",
        Submission.landing_slug,
        Submission.utm_campaign,
        Submission.created_at,
        Submission.lead_id,
    )
    # Campaign membership by enrollment, probed per campaign (the leads filter).
    Index("ix_enrollments_campaign_lead", Enrollment.campaign_slug, Enrollment.lead_id)
    # Emails delivered in a period: a range count on (kind, delivered_at).
    Index("ix_deliveries_kind_delivered", Delivery.kind, Delivery.delivered_at, Delivery.campaign_slug)


_admin_indexes()
