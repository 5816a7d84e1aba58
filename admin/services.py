"""What the admin screens do to data: a lead's timeline and export, operator fixes, test sends, demo setup."""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from admin.models import User
from admin.users import create_user
from core.clock import now
from leads.consent import SUPPRESSION_LIFTED
from leads.models import Consent, Lead, Note, StatusChange, Submission
from leads.services import change_status
from mailer import wake
from mailer.models import Delivery, DeliveryAction, ProviderEvent, Suppression, email_hash
from nurture.models import CampaignState, Enrollment
from studio.registry import registry

# Only these can be queued again: a provider never accepted them (failed) or nobody knows (unknown). Never sent ones.
REQUEUE_STATES = ("failed", "unknown")
# How the lead's page and the docs state the rule the worker applies (nurture.dispatch).
SEQUENCE_RULE = (
    "When an email of a sequence fails, the later ones wait: nothing more is sent to the lead until the failed "
    "email is queued again (Deliveries) and sent; the next email then follows after its usual delay."
)


@dataclass
class TimelineEntry:
    """One thing that happened to a lead."""

    at: datetime
    kind: str
    title: str
    details: list[str]
    delivery_id: int | None = None  # an email that left: its copy can be opened


def _utm(sub: Submission) -> str:
    parts = [
        f"{k}={v}"
        for k, v in (
            ("source", sub.utm_source),
            ("medium", sub.utm_medium),
            ("campaign", sub.utm_campaign),
            ("term", sub.utm_term),
            ("content", sub.utm_content),
        )
        if v
    ]
    return "UTM " + ", ".join(parts) if parts else "No UTM parameters"


def timeline(session: Session, lead: Lead) -> list[TimelineEntry]:
    """Submissions, consents, enrollments, deliveries with provider events, status changes and notes, newest first."""
    users = {u.id: u.email for u in session.scalars(select(User))}
    entries: list[TimelineEntry] = []
    for sub in session.scalars(select(Submission).where(Submission.lead_id == lead.id)):
        details = [f"Landing page /{sub.landing_slug}", _utm(sub)]
        if sub.referrer:
            details.append(f"Referrer {sub.referrer}")
        details.append("Agreed to emails" if sub.email_consent else "No email consent")
        entries.append(TimelineEntry(sub.created_at, "submission", "Asked for a consultation", details))
        if sub.details_accepted_at:
            who = users.get(sub.details_accepted_by_id, "staff") if sub.details_accepted_by_id else "staff"
            entries.append(
                TimelineEntry(sub.details_accepted_at, "details", "Details of a repeat request accepted", [f"By {who}"])
            )
    for c in session.scalars(select(Consent).where(Consent.lead_id == lead.id)):
        if c.purpose == SUPPRESSION_LIFTED:
            title = f"Suppression lifted by {c.actor or 'staff'} (it was: {c.version})"
            entries.append(TimelineEntry(c.created_at, "consent", title, [f"Reason: {c.detail or '-'}"]))
            continue
        verb = "granted" if c.granted else "withdrawn"
        entries.append(
            TimelineEntry(
                c.created_at,
                "consent",
                f"Consent {verb}: {c.purpose.replace('_', ' ')}",
                [f"Wording {c.version}, via {c.source}"],
            )
        )
    for e in session.scalars(select(Enrollment).where(Enrollment.lead_id == lead.id)):
        entries.append(
            TimelineEntry(e.created_at, "enrollment", f"Enrolled in {e.campaign_slug}", [f"State {e.state}"])
        )
        if e.ended_at:
            entries.append(
                TimelineEntry(
                    e.ended_at,
                    "enrollment",
                    f"Nurture {e.campaign_slug} {e.state}",
                    [f"Reason: {e.exit_reason or e.state}"],
                )
            )
    deliveries = list(session.scalars(select(Delivery).where(Delivery.lead_id == lead.id)))
    events: dict[int, list[ProviderEvent]] = {}
    if deliveries:
        stmt = select(ProviderEvent).where(ProviderEvent.delivery_id.in_([d.id for d in deliveries]))
        for ev in session.scalars(stmt):
            events.setdefault(ev.delivery_id, []).append(ev)
    actions: dict[int, list[DeliveryAction]] = {}
    if deliveries:
        stmt = select(DeliveryAction).where(DeliveryAction.delivery_id.in_([d.id for d in deliveries]))
        for action in session.scalars(stmt):
            actions.setdefault(action.delivery_id, []).append(action)
    for d in deliveries:
        label = f"{d.campaign_slug} / {d.step_id}" if d.step_id else d.kind
        details = [f"State {d.state}", f"Attempts {d.attempts}"]
        if d.error:
            details.append(error_text(d))
        if d.provider_message_id:
            details.append(f"Message id {d.provider_message_id}")
        copy = d.id if d.sent_at is not None else None
        title = f"Email {d.kind}: {label}"
        entries.append(TimelineEntry(d.sent_at or d.created_at, "delivery", title, details, delivery_id=copy))
        for ev in events.get(d.id, []):
            extra = [x for x in (ev.reason, ev.url) if x]
            entries.append(TimelineEntry(ev.occurred_at, "event", f"Provider: {ev.event} ({label})", extra))
        for action in actions.get(d.id, []):
            verb = "queued again" if action.action == "requeued" else "marked as sent"
            title = f"Email {verb} by {action.actor} ({label})"
            entries.append(TimelineEntry(action.created_at, "action", title, [f"It was {action.previous_state}"]))
    for sc in session.scalars(select(StatusChange).where(StatusChange.lead_id == lead.id)):
        who = users.get(sc.user_id, sc.source) if sc.user_id else sc.source
        entries.append(
            TimelineEntry(sc.created_at, "status", f"Status {sc.old_status or '-'} → {sc.new_status}", [f"By {who}"])
        )
    for note in session.scalars(select(Note).where(Note.lead_id == lead.id)):
        entries.append(
            TimelineEntry(note.created_at, "note", f"Note by {users.get(note.user_id, 'staff')}", [note.body])
        )
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries


def _row(obj: Any) -> dict[str, Any]:
    out = {}
    for column in obj.__table__.columns:
        value = getattr(obj, column.key)
        out[column.key] = value.isoformat() if isinstance(value, datetime) else value
    return out


def gdpr_export(session: Session, lead: Lead) -> dict[str, Any]:
    """Everything stored about a lead, as JSON-ready data (GDPR article 15)."""
    deliveries = list(session.scalars(select(Delivery).where(Delivery.lead_id == lead.id)))
    ids = [d.id for d in deliveries]
    events = list(session.scalars(select(ProviderEvent).where(ProviderEvent.delivery_id.in_(ids)))) if ids else []
    suppression = (
        session.scalars(select(Suppression).where(Suppression.email_hash == email_hash(lead.email))).first()
        if lead.email
        else None
    )
    return {
        "exported_at": now().isoformat(),
        "controller": current_app.config["CLINIC_NAME"],
        "lead": _row(lead),
        "submissions": [_row(x) for x in session.scalars(select(Submission).where(Submission.lead_id == lead.id))],
        "consents": [_row(x) for x in session.scalars(select(Consent).where(Consent.lead_id == lead.id))],
        "status_changes": [
            _row(x) for x in session.scalars(select(StatusChange).where(StatusChange.lead_id == lead.id))
        ],
        "notes": [_row(x) for x in session.scalars(select(Note).where(Note.lead_id == lead.id))],
        "enrollments": [_row(x) for x in session.scalars(select(Enrollment).where(Enrollment.lead_id == lead.id))],
        "emails": [_row(x) for x in deliveries],
        "email_events": [_row(x) for x in events],
        "suppression": _row(suppression) if suppression else None,
    }


def gdpr_json(session: Session, lead: Lead) -> str:
    """The export as pretty JSON text."""
    return json.dumps(gdpr_export(session, lead), indent=2, ensure_ascii=False, default=str)


def mark_contacted(session: Session, lead: Lead, user: User) -> None:
    """Record that staff reached the lead: status new becomes contacted; who and when are kept."""
    if lead.status == "new":
        change_status(session, lead, "contacted", source="admin", user=user)
    if lead.contacted_at is None:
        lead.contacted_at = now()
        lead.contacted_by_id = user.id


def error_text(delivery: Delivery) -> str:
    """A delivery's error with who produced it: "the provider" only when a provider answered."""
    error = delivery.error or ""
    if delivery.state == "pending":
        return f"Queued again; the last attempt ended: {error}"
    if delivery.state == "retrying":
        return f"Will try again: {error}"
    if delivery.error_source == "content":
        return f"Not sent, the email could not be built: {error}"
    if delivery.error_source == "provider":
        return f"The provider answered: {error}"
    if delivery.error_source == "transport":
        return f"No answer from the provider: {error}"
    return f"Reason: {error}"


def requeue(session: Session, user: User, *where: ColumnElement[bool], states: tuple[str, ...] = ("failed",)) -> int:
    """Queue the deliveries matching `where` again, if failed (or unknown, when asked); returns how many.

    The state is checked by the UPDATE itself, so a delivery that was sent can never be queued again, even by a
    stale page or a concurrent change. Who did it is recorded for the lead's timeline.
    """
    moment = now()
    count = 0
    for state in states:
        if state not in REQUEUE_STATES:
            raise ValueError(f"a {state} delivery cannot be queued again")
        ids = list(
            session.scalars(
                update(Delivery)
                .where(*where, Delivery.state == state)
                .values(
                    state="pending", due_at=moment, lease_owner=None, lease_until=None, attempts=0, updated_at=moment
                )
                .returning(Delivery.id)
                .execution_options(synchronize_session=False)
            )
        )
        session.add_all(
            DeliveryAction(delivery_id=i, action="requeued", previous_state=state, actor=user.email, created_at=moment)
            for i in ids
        )
        count += len(ids)
    return count


def mark_sent(session: Session, delivery_id: int, user: User) -> bool:
    """Settle an unknown delivery as sent (the provider's activity shows it left); False if it is not unknown."""
    moment = now()
    changed = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.state == "unknown")
        .values(state="sent", sent_at=func.coalesce(Delivery.sent_at, moment), updated_at=moment)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed:
        session.add(
            DeliveryAction(
                delivery_id=delivery_id,
                action="marked_sent",
                previous_state="unknown",
                actor=user.email,
                created_at=moment,
            )
        )
    return bool(changed)


def test_send_addresses(user: User) -> list[str]:
    """Where a test send may go: the signed-in user's address, then the staff addresses in TEST_SEND_EMAILS."""
    listed = [str(address).lower() for address in current_app.config.get("TEST_SEND_EMAILS") or ()]
    return list(dict.fromkeys([user.email.lower(), *listed]))


def queue_test_send(
    session: Session, campaign_slug: str, step_id: str, user: User, to: str | None = None, variant: str | None = None
) -> Delivery:
    """Record a test delivery of a step to a staff address (the user's own by default); the worker sends it.

    Only the addresses of test_send_addresses() are accepted: a test never goes to a lead.
    """
    recipient = (to or user.email).strip().lower()
    if recipient not in test_send_addresses(user):
        raise ValueError(f"{recipient} is not a staff address for test sends (TEST_SEND_EMAILS)")
    moment = now()
    delivery = Delivery(
        dedupe_key=f"test:{uuid.uuid4()}",
        kind="test",
        lead_id=None,
        campaign_slug=campaign_slug,
        step_id=step_id,
        variant=variant,
        recipient=recipient,
        state="pending",
        due_at=moment,
        created_at=moment,
        updated_at=moment,
    )
    session.add(delivery)
    session.flush()
    wake.soon(session)  # the test email leaves as soon as it is committed
    return delivery


def ensure_campaign_states(session: Session) -> int:
    """A CampaignState row for every loaded campaign; returns how many were added."""
    existing = set(session.scalars(select(CampaignState.slug)))
    added = 0
    for campaign in registry().all():
        if campaign.slug not in existing:
            session.add(CampaignState(slug=campaign.slug, paused=False, updated_at=now()))
            added += 1
    return added


def clinic_domain() -> str:
    """The clinic's mail domain, from MAIL_FROM."""
    sender = current_app.config.get("MAIL_FROM") or "care@nexgenesis.example"
    return sender.rsplit("@", 1)[-1] or "nexgenesis.example"


def demo_setup(session: Session) -> tuple[str, str] | None:
    """Idempotent first-run setup; returns (email, password) of the admin it created, if it had to."""
    created = None
    if session.scalar(select(User.id).limit(1)) is None:
        email = f"admin@{clinic_domain()}"
        password = secrets.token_urlsafe(15)
        create_user(session, email, password, role="admin")
        created = (email, password)
    ensure_campaign_states(session)
    return created
