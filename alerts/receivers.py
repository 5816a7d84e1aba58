"""Signal receivers: record alerts and webhook events in the sender's transaction, never commit."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from sqlalchemy import select, update

from alerts.models import WebhookEvent
from alerts.services import admin_lead_path, record_intake_alerts, record_webhook_event, record_webhook_events
from core import signals
from mailer.models import Delivery
from mailer.outbox import erase_copies


def on_lead_captured(sender: Flask, *, session: Any, lead: Any, submission: Any, created: bool, **_: Any) -> None:
    """A signup: alert the intake addresses (every submission, once) and announce new leads to webhooks."""
    record_intake_alerts(session, lead, submission, sender.config.get("INTAKE_EMAILS") or [])
    if created:
        record_webhook_event(session, "lead.created", lead, app=sender)


def on_lead_status_changed(
    sender: Flask, *, session: Any, lead: Any, old_status: str | None, new_status: str, source: str, **_: Any
) -> None:
    """A status change (contacted, booked, ...) goes to webhooks with the previous status and who changed it."""
    record_webhook_event(
        session,
        "lead.status_changed",
        lead,
        {"previous_status": old_status, "status": new_status, "changed_via": source},
        app=sender,
    )


def on_lead_unsubscribed(
    sender: Flask, *, session: Any, lead_ids: list[int] | None = None, reason: str, source: str, **_: Any
) -> None:
    """Each unsubscribed lead goes to webhooks; the email address itself never does. Leads are loaded in bulk."""
    if not lead_ids or not sender.config.get("WEBHOOK_URLS"):
        return
    record_webhook_events(
        session, "lead.unsubscribed", lead_ids, {"reason": reason, "unsubscribed_via": source}, app=sender
    )


def on_lead_erased(sender: Flask, *, session: Any, lead: Any, **_: Any) -> None:
    """Outgoing webhooks carry the lead's details: empty them and stop those not yet delivered. Digests name many
    leads: the outbox's copies of those sent since the lead signed up that list it go too."""
    session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.lead_id == lead.id, WebhookEvent.state.in_(("pending", "sending")))
        .values(state="failed", last_error="lead erased before delivery", next_attempt_at=None)
    )
    session.execute(update(WebhookEvent).where(WebhookEvent.lead_id == lead.id).values(payload="{}"))
    ids = session.scalars(
        select(Delivery.provider_message_id).where(
            Delivery.kind == "digest", Delivery.created_at >= lead.created_at, Delivery.provider_message_id.is_not(None)
        )
    ).all()
    # The lead's admin link, not its name: the name is already gone, and it could match other leads' lines.
    mentions = re.compile(re.escape(admin_lead_path(lead.id, sender)) + r"(?!\d)")
    erase_copies(sender.config["OUTBOX_DIR"], message_ids=ids, containing=mentions)


def connect() -> None:
    """Subscribe to the domain signals; idempotent (blinker keeps one entry per receiver)."""
    signals.lead_captured.connect(on_lead_captured, weak=False)
    signals.lead_status_changed.connect(on_lead_status_changed, weak=False)
    signals.lead_unsubscribed.connect(on_lead_unsubscribed, weak=False)
    signals.lead_erased.connect(on_lead_erased, weak=False)
