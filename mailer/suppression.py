"""The suppression list: addresses we must never email again, and the one place that unsubscribes a lead."""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

from flask import current_app
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from core import signals
from core.clock import now
from core.db import among, chunked, insert_rows
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
        current_app._get_current_object(),
        session=session,
        lead_ids=[lead.id] if lead is not None else [],
        reason=reason,
        source=source,
    )
    session.flush()
    return row


class Suppressing(NamedTuple):
    """One address to suppress in bulk: why, the provider's words, and its lead when the caller already knows it."""

    email: str
    reason: str
    detail: str | None = None
    lead_id: int | None = None


def suppress_many(session: Session, items: list[Suppressing], source: str) -> int:
    """suppress() for many addresses at once, with set-based statements per chunk; returns the rows added.

    The same outcome as calling suppress() for each item in order: an address's first reason is the one kept,
    each (address, reason) is announced once, and a lead's enrollments end for the first reason that names it.
    Safe to repeat. Runs inside the caller's transaction and never commits.
    """
    moment = now()
    firsts: list[Suppressing] = []
    seen: set[tuple[str, str]] = set()
    for item in items:
        address = normalize(item.email) if item.email else ""
        if address and (address, item.reason) not in seen:
            seen.add((address, item.reason))
            firsts.append(item._replace(email=address))
    rows: dict[str, dict[str, object]] = {}
    for item in firsts:
        rows.setdefault(
            item.email,
            {
                "email": item.email,
                "email_hash": email_hash(item.email),
                "reason": item.reason[:32],
                "source": source[:32],
                "detail": (item.detail or None) and item.detail[:500],
                "created_at": moment,
            },
        )
    table = Suppression.__table__
    added = len(insert_rows(session, table, list(rows.values()), unique="email_hash", returning=table.c.id))

    lead_of: dict[str, int] = {}
    for chunk in chunked(sorted({item.email for item in firsts if item.lead_id is None})):
        lead_of.update(
            (email, lead_id)
            for lead_id, email in session.execute(select(Lead.id, Lead.email).where(among(session, Lead.email, chunk)))
        )
    named = [(item, item.lead_id or lead_of.get(item.email)) for item in firsts]
    _withdraw(session, [lead_id for item, lead_id in named if lead_id and item.reason in WITHDRAWAL_REASONS], source)

    # Announce in the order suppress() would have: every lead's first reason before anyone's second.
    waves: list[dict[str, list[int]]] = []
    count: Counter[int] = Counter()
    for item, lead_id in named:
        if lead_id is None:
            continue
        if count[lead_id] == len(waves):
            waves.append({})
        waves[count[lead_id]].setdefault(item.reason, []).append(lead_id)
        count[lead_id] += 1
    app = current_app._get_current_object()
    for wave in waves:
        for reason, lead_ids in wave.items():
            signals.lead_unsubscribed.send(app, session=session, lead_ids=lead_ids, reason=reason, source=source)
    session.flush()
    return added


def _withdraw(session: Session, lead_ids: list[int], source: str) -> None:
    """Withdraw these leads' email consent (one consent row each, only where not withdrawn already)."""
    moment = now()
    for chunk in chunked(sorted(set(lead_ids))):
        ids = list(
            session.scalars(
                select(Lead.id).where(
                    among(session, Lead.id, chunk), or_(Lead.unsubscribed_at.is_(None), Lead.email_opt_in.is_(True))
                )
            )
        )
        if not ids:
            continue
        session.execute(
            update(Lead)
            .where(among(session, Lead.id, ids))
            .values(unsubscribed_at=func.coalesce(Lead.unsubscribed_at, moment), email_opt_in=False)
            .execution_options(synchronize_session="fetch")
        )
        consent_source = _CONSENT_SOURCE.get(source, source)[:32]
        insert_rows(
            session,
            Consent.__table__,
            [
                {
                    "lead_id": lead_id,
                    "purpose": CONSENT_PURPOSE,
                    "version": WITHDRAWAL_VERSION,
                    "granted": False,
                    "source": consent_source,
                    "created_at": moment,
                }
                for lead_id in ids
            ],
        )


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
