"""The suppression list: addresses we must never email again, and the one place that unsubscribes a lead."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import signals
from core.clock import now
from leads.models import Consent, Lead
from mailer.base import PermanentError
from mailer.models import Suppression, email_hash

# Reasons that mean the person asked us to stop; a bounce or a drop is the mailbox, not the person.
WITHDRAWAL_REASONS = frozenset({"unsubscribe", "spamreport", "group_unsubscribe", "manual"})
CONSENT_PURPOSE = "email_marketing"
WITHDRAWAL_VERSION = "withdrawal"
# Suppression.source -> Consent.source
_CONSENT_SOURCE = {"link": "unsubscribe", "one_click": "one_click", "provider": "provider", "admin": "admin"}


class SuppressedError(PermanentError):
    """The recipient is on the suppression list; nothing was sent."""


def normalize(email: str) -> str:
    """The form addresses are compared in."""
    return email.strip().lower()


def is_suppressed(session: Session, email: str) -> bool:
    """True when this address must not be emailed."""
    if not email:
        return False
    return session.scalar(select(Suppression.id).where(Suppression.email_hash == email_hash(email))) is not None


def suppress(
    session: Session,
    email: str | None,
    reason: str,
    source: str,
    detail: str | None = None,
    *,
    lead: Lead | None = None,
) -> Suppression | None:
    """Block an address, withdraw the lead's email consent (if the person asked) and announce lead_unsubscribed
    (nurture's receiver ends the lead's enrollments).

    Safe to repeat. Runs inside the caller's transaction and never commits.
    """
    address = normalize(email) if email else None
    if lead is None and address:
        lead = session.scalar(select(Lead).where(Lead.email == address))
    if address is None and lead is not None and lead.email:
        address = normalize(lead.email)

    row = None
    if address:
        row = session.scalar(select(Suppression).where(Suppression.email_hash == email_hash(address)))
        if row is None:
            row = Suppression(
                email=address,
                email_hash=email_hash(address),
                reason=reason[:32],
                source=source[:32],
                detail=(detail or None) and detail[:500],
                created_at=now(),
            )
            session.add(row)
            session.flush()

    withdrawing = lead is not None and reason in WITHDRAWAL_REASONS
    if withdrawing and (lead.unsubscribed_at is None or lead.email_opt_in):
        lead.unsubscribed_at = lead.unsubscribed_at or now()
        lead.email_opt_in = False
        session.add(
            Consent(
                lead_id=lead.id,
                purpose=CONSENT_PURPOSE,
                version=WITHDRAWAL_VERSION,
                granted=False,
                source=_CONSENT_SOURCE.get(source, source)[:32],
                created_at=now(),
            )
        )
    signals.lead_unsubscribed.send(
        current_app._get_current_object(), session=session, lead=lead, email=address, reason=reason, source=source
    )
    session.flush()
    return row


# The person reported our email as spam: no one may put the address back on the list of people we email.
NEVER_LIFTED = frozenset({"spamreport"})


class LiftRefused(ValueError):
    """A suppression that cannot be lifted; str() says why, in words for the admin."""


def lift(session: Session, suppression: Suppression, reason: str, actor: str) -> Lead | None:
    """Take an address off the suppression list, recording who and why in the lead's consent ledger.

    It clears the lead's unsubscribed mark but gives no consent and restarts no sequence: a person who wants
    emails again signs up with the box ticked. Runs in the caller's transaction; returns the lead, if any.
    """
    from leads.consent import SUPPRESSION_LIFTED

    why = " ".join((reason or "").split())
    if suppression.reason in NEVER_LIFTED:
        raise LiftRefused("an address reported as spam stays suppressed: the person asked never to hear from us")
    if not why:
        raise LiftRefused("say why the suppression is lifted (who asked, or what was fixed)")
    if not suppression.email:
        raise LiftRefused("the address was erased: only its hash is kept, so it stays blocked")
    lead = session.scalar(select(Lead).where(Lead.email == normalize(suppression.email)))
    if lead is not None:
        lead.unsubscribed_at = None
        session.add(
            Consent(
                lead_id=lead.id,
                purpose=SUPPRESSION_LIFTED,
                version=suppression.reason[:32],
                granted=True,
                source="admin",
                actor=actor[:320],
                detail=why[:500],
                created_at=now(),
            )
        )
    session.delete(suppression)
    session.flush()
    return lead
