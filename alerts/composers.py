"""Emails for the clinic's staff: the new-lead alert and the daily digest. Never the interest or the message."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app

from alerts import digest as digest_mod
from alerts.services import DIGEST_REASON, INTAKE_REASON, admin_lead_url, first_submission_id, parse_intake_key
from core.db import db
from core.templating import escape_markdown
from leads.models import CONTACT_METHODS, Lead, Submission
from leads.services import CONTACT_DETAIL_FIELDS, detail_differences
from mailer.base import ComposeError, Message
from mailer.compose import build_template_email

# Field names only: an alert never carries the values (no phone, no email), nor anything about the interest.
DIFFER_LABELS = {"first_name": "name", "last_name": "name", "phone": "phone", "preferred_contact": "contact preference"}


def _md(value: object) -> str:
    """Plain text inside Markdown (for values nested in lists, which the mailer does not escape)."""
    return escape_markdown(str(value))


def local_time(moment: datetime | None, tz: ZoneInfo, fmt: str = "%a %d %b %Y, %H:%M %Z") -> str:
    """A UTC moment shown in the clinic's time zone."""
    return moment.astimezone(tz).strftime(fmt) if moment else "unknown time"


def attribution(submission: Submission | None, lead: Lead | None) -> str:
    """'google / cpc / spring-knee' from the submission's UTM tags, else the lead's recorded source."""
    if submission is not None:
        tags = [submission.utm_source, submission.utm_medium, submission.utm_campaign]
        if any(tags):
            return " / ".join(tag or "-" for tag in tags)
    return (lead.source if lead is not None else None) or "direct"


def _tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["CLINIC_TIMEZONE"])


def _build(delivery: Any, source: str, context: dict[str, Any], reason: str, kind: str) -> Message:
    if not delivery.recipient:
        raise ComposeError(f"{kind} delivery #{delivery.id} has no recipient")
    # Staff mail about work, not marketing: no unsubscribe headers; the reason says how to stop it.
    return build_template_email(
        f"alerts/email/{source}.md", to=delivery.recipient, context=context, delivery=delivery, reason=reason
    )


def compose_intake_alert(delivery: Any) -> Message:
    """The new-lead alert for one staff address: who, how to reach them, where from, and the admin link."""
    session = db.session()
    submission_id, _ = parse_intake_key(delivery.dedupe_key)
    submission = session.get(Submission, submission_id)
    lead = session.get(Lead, delivery.lead_id) if delivery.lead_id is not None else None
    if lead is None:
        raise ComposeError(f"intake alert #{delivery.id}: the lead no longer exists")
    repeat = submission is not None and first_submission_id(session, lead.id) != submission.id
    first_name = digest_mod.first_name(lead)
    # The lead's own details, not what a repeat request typed: anyone can send the form with someone's email.
    method = lead.preferred_contact
    differing = detail_differences(lead, submission) if repeat and submission is not None else {}
    differ = list(dict.fromkeys(DIFFER_LABELS[name] for name in CONTACT_DETAIL_FIELDS if name in differing))
    landing = (submission.landing_slug if submission is not None else None) or lead.landing_slug or "(none)"
    context = {
        "kind_label": ("Repeat request, details differ" if differ else "Repeat request") if repeat else "New lead",
        "details_differ": ", ".join(differ),
        "first_name": first_name,
        "preferred_contact": CONTACT_METHODS.get(method or "", method or "not given"),
        "landing_page": landing,
        "source": attribution(submission, lead),
        "received_at": local_time(submission.created_at if submission is not None else lead.created_at, _tz()),
        "admin_url": admin_lead_url(lead.id),
        "clinic_name": current_app.config["CLINIC_NAME"],
    }
    return _build(delivery, "intake_alert", context, INTAKE_REASON, "intake_alert")


def _lines(items: list[digest_mod.DigestLead], tz: ZoneInfo, with_attribution: bool) -> list[dict[str, str]]:
    lines = []
    for item in items[: digest_mod.DIGEST_LIST_LIMIT]:
        detail = local_time(item.at, tz, "%H:%M")
        if with_attribution:
            detail += f", {item.landing_page or '(no landing page)'}, {item.source or 'direct'}"
        lines.append({"name": _md(item.first_name), "url": admin_lead_url(item.lead_id), "detail": _md(detail)})
    return lines


def compose_digest(delivery: Any) -> Message:
    """Yesterday's new leads, bookings and unsubscribes, in the clinic's time zone."""
    send_day, _ = digest_mod.parse_digest_key(delivery.dedupe_key)
    tz = _tz()
    day = digest_mod.reported_day(send_day)
    summary = digest_mod.summarize(day, tz)
    limit = digest_mod.DIGEST_LIST_LIMIT
    sections = [
        ("New leads", summary.new_leads, True),
        ("Bookings", summary.bookings, False),
        ("Unsubscribes", summary.unsubscribes, False),
    ]
    site = current_app.config["SITE_URL"].rstrip("/")
    context = {
        "clinic_name": current_app.config["CLINIC_NAME"],
        "day_label": day.strftime("%A %d %B %Y"),
        "timezone": str(tz.key),
        "new_count": len(summary.new_leads),
        "booked_count": len(summary.bookings),
        "unsubscribed_count": len(summary.unsubscribes),
        "sections": [
            {"title": title, "items": _lines(items, tz, attr), "more": max(len(items) - limit, 0)}
            for title, items, attr in sections
        ],
        "leads_url": f"{site}/admin/leads",
    }
    return _build(delivery, "digest", context, DIGEST_REASON, "digest")
