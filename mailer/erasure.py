"""The mailer's part of erasing a lead (the lead_erased receiver): its deliveries' addresses and error texts, the
provider's event details, the suppression list's copy of the address (its hash stays, so a bounced address stays
blocked) and the local outbox's copies of every email to the lead."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailer.models import Delivery, ProviderEvent, Suppression, email_hash
from mailer.outbox import erase_copies

log = logging.getLogger(__name__)


def erase_rows(session: Session, lead_id: int, email: str | None) -> None:
    """Clear what the ledger keeps about the lead (in the caller's transaction); mail not yet sent never leaves."""
    if email:
        session.execute(
            update(Suppression)
            .where((Suppression.email == email) | (Suppression.email_hash == email_hash(email)))
            .values(email=None, detail=None)
        )
    delivery_ids = select(Delivery.id).where(Delivery.lead_id == lead_id).scalar_subquery()
    session.execute(
        update(ProviderEvent).where(ProviderEvent.delivery_id.in_(delivery_ids)).values(reason=None, url=None)
    )
    session.execute(update(Delivery).where(Delivery.lead_id == lead_id).values(recipient=None, error=None))
    # Mail not yet handed to the provider must never go out to an erased person.
    session.execute(
        update(Delivery)
        .where(Delivery.lead_id == lead_id, Delivery.state.in_(("pending", "retrying")))
        .values(state="skipped", error="lead erased", due_at=None)
    )


def on_lead_erased(sender: Flask, *, session: Session, lead: Any, email: str | None, **_: Any) -> None:
    """Erase the mailer's rows about the lead, then the outbox's copies of every email to it or about it."""
    erase_rows(session, lead.id, email)
    ids = session.scalars(
        select(Delivery.provider_message_id).where(
            Delivery.lead_id == lead.id, Delivery.provider_message_id.is_not(None)
        )
    ).all()
    removed = erase_copies(sender.config["OUTBOX_DIR"], addresses=[email] if email else [], message_ids=ids)
    if removed:
        log.info("lead %s erased: %d outbox file(s) deleted", lead.id, removed)
