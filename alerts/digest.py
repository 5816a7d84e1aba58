"""The daily digest: which local day to report and when, what happened that day, and recording its deliveries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select

from alerts.services import insert_ignoring_duplicates
from core.clock import now
from core.db import db
from core.text import strip_bidi
from leads.models import Consent, Lead, StatusChange
from mailer.models import Delivery

DIGEST_LIST_LIMIT = 50


def parse_time(value: str) -> time:
    """'08:00' -> time(8, 0); raises ValueError with a helpful message otherwise."""
    try:
        hours, minutes = value.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"{value!r} is not a time of day (use HH:MM, e.g. 08:00)") from None


def due_day(moment: datetime, tz: ZoneInfo, at: time) -> date | None:
    """The local date whose digest is due at `moment` (today's local date once `at` has passed), else None.

    The digest sent on local date D reports D - 1. A time that does not exist on a spring-forward day
    (02:30 in America/Denver) is passed once the clock jumps past it.
    """
    local = moment.astimezone(tz)
    return local.date() if local.time().replace(tzinfo=None) >= at else None


def reported_day(send_day: date) -> date:
    """The day a digest sent on `send_day` covers: the local day before."""
    return send_day - timedelta(days=1)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a local calendar day in UTC; 23 or 25 hours long on daylight-saving changes."""
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end


def digest_key(send_day: date, address: str) -> str:
    """The dedupe key of one digest: one per local send day and address."""
    return f"digest:{send_day.isoformat()}:{address}"


def parse_digest_key(key: str) -> tuple[date, str]:
    """(send day, address) from a digest's dedupe key."""
    _, day, address = key.split(":", 2)
    return date.fromisoformat(day), address


@dataclass
class DigestLead:
    """One line of the digest: no contact or health detail."""

    lead_id: int
    first_name: str
    at: datetime
    landing_page: str | None = None
    source: str | None = None


@dataclass
class DigestSummary:
    """What happened on one local day."""

    day: date
    new_leads: list[DigestLead] = field(default_factory=list)
    bookings: list[DigestLead] = field(default_factory=list)
    unsubscribes: list[DigestLead] = field(default_factory=list)


def first_name(lead: object) -> str:
    """The name staff see in alerts: the first name only, or a placeholder once erased or blank."""
    if getattr(lead, "erased_at", None):
        return f"Erased lead #{lead.id}"
    # Names are cleaned at capture; rows stored before that may still hold bidirectional overrides.
    return strip_bidi(getattr(lead, "first_name", None) or "").strip() or f"Lead #{lead.id}"


def summarize(day: date, tz: ZoneInfo) -> DigestSummary:
    """New leads, bookings and unsubscribes of a local day."""
    start, end = day_bounds(day, tz)
    session = db.session()
    summary = DigestSummary(day=day)
    for lead in session.scalars(
        select(Lead).where(Lead.created_at >= start, Lead.created_at < end).order_by(Lead.created_at, Lead.id)
    ):
        summary.new_leads.append(DigestLead(lead.id, first_name(lead), lead.created_at, lead.landing_slug, lead.source))

    booked = session.execute(
        select(StatusChange.lead_id, StatusChange.created_at, Lead)
        .join(Lead, Lead.id == StatusChange.lead_id)
        .where(StatusChange.new_status == "booked", StatusChange.created_at >= start, StatusChange.created_at < end)
        .order_by(StatusChange.created_at, StatusChange.id)
    ).all()
    seen: set[int] = set()
    for lead_id, at, lead in booked:
        if lead_id not in seen:
            seen.add(lead_id)
            summary.bookings.append(DigestLead(lead_id, first_name(lead), at))

    # A withdrawal is recorded as a Consent row; Lead.unsubscribed_at catches paths that only set the flag.
    withdrawn: dict[int, datetime] = {}
    for lead_id, at in session.execute(
        select(Consent.lead_id, Consent.created_at).where(
            Consent.granted.is_(False),
            Consent.purpose == "email_marketing",
            Consent.created_at >= start,
            Consent.created_at < end,
        )
    ):
        withdrawn.setdefault(lead_id, at)
    for lead_id, at in session.execute(
        select(Lead.id, Lead.unsubscribed_at).where(Lead.unsubscribed_at >= start, Lead.unsubscribed_at < end)
    ):
        withdrawn.setdefault(lead_id, at)
    if withdrawn:
        leads = {lead.id: lead for lead in session.scalars(select(Lead).where(Lead.id.in_(list(withdrawn))))}
        for lead_id, at in sorted(withdrawn.items(), key=lambda item: (item[1], item[0])):
            summary.unsubscribes.append(DigestLead(lead_id, first_name(leads[lead_id]), at))
    return summary


def record_due() -> int:
    """Tick task: once the local digest time has passed, record today's digest per address (once)."""
    config = current_app.config
    addresses = list(dict.fromkeys(a.strip().lower() for a in config.get("INTAKE_EMAILS") or [] if a.strip()))
    if config.get("INTAKE_DIGEST", "off") != "daily" or not addresses:
        return 0
    moment = now()
    send_day = due_day(moment, ZoneInfo(config["CLINIC_TIMEZONE"]), parse_time(config["INTAKE_DIGEST_TIME"]))
    if send_day is None:
        return 0
    keys = {digest_key(send_day, address): address for address in addresses}
    session = db.session()
    existing = set(session.scalars(select(Delivery.dedupe_key).where(Delivery.dedupe_key.in_(list(keys)))))
    session.rollback()
    missing = [key for key in keys if key not in existing]
    if not missing:
        return 0
    with db.write_transaction() as session:
        insert_ignoring_duplicates(
            session,
            [{"kind": "digest", "recipient": keys[key], "due_at": moment, "dedupe_key": key} for key in missing],
        )
    return len(missing)
