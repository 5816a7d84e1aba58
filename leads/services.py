"""What happens to leads: capture a signup, change status, add notes, erase personal data.

Every function takes the caller's session and never commits: wrap calls in
`with db.write_transaction() as s:` so signal receivers (nurture, alerts) share the transaction.
Never log names, emails, interest or message here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask import current_app, has_app_context
from phonenumbers import timezone as phone_timezone
from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core import signals
from core.clock import now
from core.db import Prepared
from core.text import strip_bidi
from leads.consent import CURRENT_EMAIL_CONSENT, EMAIL_MARKETING, PRIVACY_NOTICE, PRIVACY_NOTICE_VERSION
from leads.models import (
    CONTACT_METHODS,
    INTERESTS,
    STATUSES,
    UTM_FIELDS,
    Consent,
    Lead,
    Note,
    StatusChange,
    Submission,
)
from studio.registry import registry

log = logging.getLogger(__name__)

# Column widths of leads/submissions, so a service call never fails on an over-long value.
LIMITS = {
    "email": 320,
    "first_name": 100,
    "last_name": 100,
    "phone": 32,
    "timezone": 64,
    "source": 100,
    "landing_slug": 64,
    "utm": 100,
    "referrer": 1000,
    "user_agent": 500,
}
MESSAGE_MAX = 2000
ERASED_SOURCE = "(erased)"


class StoredRow(SimpleNamespace):
    """A row as a signup has just written it: its columns as attributes, no ORM object (no relationships).

    Building ORM objects for the new lead and submission, only for the signal's receivers to read a few columns,
    cost a signup about a tenth of its time while it held SQLite's write lock.
    """


@dataclass
class CaptureResult:
    """What capture_lead did: the lead, the new submission, whether the lead is new and consented now.

    From store_signup, `lead` (when new) and `submission` are StoredRow; capture_lead gives ORM objects.
    """

    lead: Lead | StoredRow
    submission: Submission | StoredRow
    created: bool
    consented: bool


_normalized = threading.local()


class UnsendableEmail(ValueError):
    """A well-formed address no mail system we use can deliver to; str() tells the visitor what to do."""


def normalize_email(raw: str) -> str:
    """A valid address in ASCII (IDNA) form, lowercased; raises ValueError with a readable reason otherwise.

    An internationalised domain (user@exämple.com) is kept as its ASCII form (user@xn--exmple-cua.com), which
    every sender and header can carry. Letters outside ASCII before the @ need SMTPUTF8, which SendGrid does
    not offer, so such an address is refused with UnsendableEmail.
    """
    text = (raw or "").strip()
    if text and text == getattr(_normalized, "email", None):
        # The form has just normalized this very address and prepare_signup asks again: the answer is the same
        # (normalizing is idempotent) and email_validator costs ~0.1 ms. Only this thread's last result is kept.
        return text
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    if result.ascii_email is None:
        raise UnsendableEmail(
            "We cannot send email to an address with accents or non-Latin letters before the @; "
            "please use another address."
        )
    # Mailboxes are case-insensitive in practice; one person must never become two leads.
    normalized = result.ascii_email.lower()
    if len(normalized) > LIMITS["email"]:
        raise ValueError("The email address is too long.")
    _normalized.email = normalized
    return normalized


def valid_timezone(name: str | None) -> str | None:
    """The IANA zone name if it is one, else None."""
    name = (name or "").strip()
    if not name or len(name) > LIMITS["timezone"] or name not in _zones():
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def timezone_for_phone(e164: str | None) -> str | None:
    """The time zone of a phone number when it maps to exactly one zone."""
    if not e164:
        return None
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    zones = [z for z in phone_timezone.time_zones_for_number(number) if valid_timezone(z)]
    return zones[0] if len(zones) == 1 else None


def _clip(value: Any, limit: int) -> str | None:
    # Bidirectional overrides would reverse how a name or tag reads in the admin, a CSV or an email subject.
    text = strip_bidi(str(value)).strip() if value is not None else ""
    return text[:limit] or None


def source_for(utm_source: str | None, referrer: str | None) -> str:
    """First-touch source: the utm_source, else the referring host, else 'direct'."""
    if utm_source:
        return utm_source[: LIMITS["source"]]
    if referrer:
        try:
            host = urlsplit(referrer).hostname
        except ValueError:
            host = None
        if host:
            return host[: LIMITS["source"]]
    return "direct"


def _campaign_for(slug: str | None) -> Any:
    if not slug or not has_app_context():
        return None
    return registry().get(slug) if "campaigns" in current_app.extensions else None


_LEAD_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "interest",
    "preferred_contact",
    "timezone",
    "status",
    "source",
    "landing_slug",
    "email_opt_in",
    "created_at",
    "updated_at",
)


def _insert_lead(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (email) DO NOTHING RETURNING id: an upsert is written differently on each database."""
    table = Lead.__table__
    if dialect == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing(index_elements=["email"])
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=["email"])
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported database {dialect}")
    return stmt.returning(table.c.id)


_SUBMISSION_COLUMNS = (
    "lead_id",
    "landing_slug",
    "landing_variant",
    *UTM_FIELDS,
    "referrer",
    "user_agent",
    "interest",
    "preferred_contact",
    "first_name",
    "last_name",
    "phone",
    "details_accepted_at",
    "details_accepted_by_id",
    "message",
    "email_consent",
    "created_at",
)
_CONSENT_COLUMNS = ("lead_id", "submission_id", "purpose", "version", "granted", "source", "created_at")

# A signup's statements, run while SQLite's single write lock is held (core.db.Prepared says why not execute()).
_INSERT_LEAD = Prepared(_insert_lead, _LEAD_COLUMNS)
_INSERT_SUBMISSION = Prepared(
    lambda _: insert(Submission.__table__).returning(Submission.__table__.c.id), _SUBMISSION_COLUMNS
)


@lru_cache(maxsize=4)
def _insert_consents(rows: int) -> Prepared:
    """One INSERT of `rows` consents (an executemany costs a round trip per row on PostgreSQL), per size."""
    names = [{name: f"{name}_{row}" for name in _CONSENT_COLUMNS} for row in range(rows)]
    return Prepared(
        lambda _: insert(Consent.__table__).values(
            [{column: bindparam(name) for column, name in row.items()} for row in names]
        ),
        [name for row in names for name in row.values()],
    )


@dataclass(frozen=True)
class Signup:
    """A signup cleaned and checked: everything capture_lead works out before it needs the database."""

    email: str
    first_name: str | None
    last_name: str | None
    phone: str | None
    interest: str | None
    preferred_contact: str
    message: str | None
    consented: bool
    privacy_ack: bool
    timezone: str | None
    landing_slug: str
    landing_variant: str | None
    utm: dict[str, str | None]
    referrer: str | None
    user_agent: str | None
    source: str
    consent_source: str
    campaign: Any


def _interest(value: Any, slug: str) -> str | None:
    """The area of interest when it is one the campaign's form offers (the clinic's list without a campaign)."""
    campaign = _campaign_for(slug)
    offered = dict(campaign.page.interests) if campaign is not None else INTERESTS
    return value if isinstance(value, str) and value in offered else None


def prepare_signup(data: Mapping[str, Any], meta: Mapping[str, Any]) -> Signup:
    """Normalize and check a signup (see capture_lead); raises ValueError for a bad email. Needs no database."""
    phone = _clip(data.get("phone"), LIMITS["phone"])
    preferred = data.get("preferred_contact")
    utm = {name: _clip(meta.get(name), LIMITS["utm"]) for name in UTM_FIELDS}
    referrer = _clip(meta.get("referrer"), LIMITS["referrer"])
    slug = _clip(meta.get("landing_slug"), LIMITS["landing_slug"]) or ""
    return Signup(
        email=normalize_email(data["email"]),
        first_name=_clip(data.get("first_name"), LIMITS["first_name"]),
        last_name=_clip(data.get("last_name"), LIMITS["last_name"]),
        phone=phone,
        interest=_interest(data.get("interest"), slug),
        preferred_contact=preferred if preferred in CONTACT_METHODS else "email",
        message=(strip_bidi(str(data.get("message") or "")).strip()[:MESSAGE_MAX]) or None,
        consented=bool(data.get("email_consent")),
        privacy_ack=bool(data.get("privacy_ack", True)),
        timezone=valid_timezone(data.get("timezone")) or timezone_for_phone(phone),
        landing_slug=slug,
        landing_variant=_clip(meta.get("landing_variant"), 16),
        utm=utm,
        referrer=referrer,
        user_agent=_clip(meta.get("user_agent"), LIMITS["user_agent"]),
        source=source_for(utm["utm_source"], referrer),
        consent_source=str(meta.get("consent_source") or "form")[:32],
        campaign=meta.get("campaign") or _campaign_for(slug),
    )


def capture_lead(session: Session, data: Mapping[str, Any], meta: Mapping[str, Any]) -> CaptureResult:
    """Store one signup: upsert the lead by email, add a submission and consents, announce lead_captured.

    data: email (required), first_name (required), last_name, phone (E.164), interest, preferred_contact,
    message, email_consent (bool), privacy_ack (bool), timezone (IANA name from the browser, optional).
    meta: landing_slug, utm_source/medium/campaign/term/content, referrer, user_agent, campaign (optional;
    looked up from landing_slug when missing), consent_source (default "form").
    """
    result = store_signup(session, prepare_signup(data, meta))
    # Callers of this service get ORM objects (fresh from the rows, whatever the session held under those ids).
    return replace(
        result,
        lead=session.get(Lead, result.lead.id, populate_existing=True),
        submission=session.get(Submission, result.submission.id, populate_existing=True),
    )


def store_signup(session: Session, signup: Signup) -> CaptureResult:
    """The database half of capture_lead, for a signup prepared before the write transaction began.

    A web worker holds SQLite's only write lock while this runs, so it issues a few plain INSERTs
    (no read-back, one ORM flush at most) and leaves every check to prepare_signup.
    """
    moment = now()
    conn = session.connection()
    lead_values = {
        "email": signup.email,
        "first_name": signup.first_name,
        "last_name": signup.last_name,
        "phone": signup.phone,
        "interest": signup.interest,
        "preferred_contact": signup.preferred_contact,
        "timezone": signup.timezone,
        "status": "new",
        "source": signup.source,
        "landing_slug": signup.landing_slug or None,
        "email_opt_in": signup.consented,
        "created_at": moment,
        "updated_at": moment,
    }
    inserted = _INSERT_LEAD.execute(conn, lead_values)
    created = inserted is not None
    if created:
        lead = StoredRow(
            id=inserted[0],
            **lead_values,
            status_changed_at=None,
            contacted_at=None,
            contacted_by_id=None,
            unsubscribed_at=None,
            erased_at=None,
        )
    else:
        # populate_existing also drops collections loaded earlier, so the rows inserted below show up in them.
        lead = session.scalars(
            select(Lead).where(Lead.email == signup.email).execution_options(populate_existing=True)
        ).one()
        # Anyone can type someone else's address: a repeat signup never changes the lead's details. Its answers
        # stay on the submission, and staff accept them on the lead's page when they are the person's own.
        lead.timezone = lead.timezone or signup.timezone
        lead.updated_at = moment
        if signup.consented:
            # An unticked box on a later visit is not a withdrawal; withdrawing goes through unsubscribe.
            lead.email_opt_in = True

    submission_values = {
        "lead_id": lead.id,
        "landing_slug": signup.landing_slug,
        "landing_variant": signup.landing_variant,
        **signup.utm,
        "referrer": signup.referrer,
        "user_agent": signup.user_agent,
        "interest": signup.interest,
        "preferred_contact": signup.preferred_contact,
        "first_name": signup.first_name,
        "last_name": signup.last_name,
        "phone": signup.phone,
        "details_accepted_at": None,
        "details_accepted_by_id": None,
        "message": signup.message,
        "email_consent": signup.consented,
        "created_at": moment,
    }
    submission_id = _INSERT_SUBMISSION.execute(conn, submission_values)[0]
    submission = StoredRow(id=submission_id, **submission_values)
    consents = [
        {
            "lead_id": lead.id,
            "submission_id": submission_id,
            "purpose": purpose,
            "version": version,
            "granted": True,
            "source": signup.consent_source,
            "created_at": moment,
        }
        for purpose, version, given in (
            (PRIVACY_NOTICE, PRIVACY_NOTICE_VERSION, signup.privacy_ack),
            (EMAIL_MARKETING, CURRENT_EMAIL_CONSENT, signup.consented),
        )
        if given
    ]
    if consents:
        _insert_consents(len(consents)).execute(
            conn, {f"{name}_{row}": values[name] for row, values in enumerate(consents) for name in _CONSENT_COLUMNS}
        )
    log.info("lead %s captured on %s (new=%s, consented=%s)", lead.id, signup.landing_slug, created, signup.consented)
    signals.lead_captured.send(
        current_app._get_current_object(),
        session=session,
        lead=lead,
        submission=submission,
        campaign=signup.campaign,
        created=created,
        consented=signup.consented,
    )
    return CaptureResult(lead=lead, submission=submission, created=created, consented=signup.consented)


# What a repeat request may give differently from the lead's record, in the order staff read them.
DETAIL_FIELDS = ("first_name", "last_name", "phone", "preferred_contact", "interest")
CONTACT_DETAIL_FIELDS = DETAIL_FIELDS[:4]


def detail_differences(lead: Lead, submission: Submission) -> dict[str, tuple[str | None, str]]:
    """{field: (the lead's value, the submission's)} for each answer given differently; blanks never differ."""
    if lead.erased_at:
        return {}
    differences = {}
    for name in DETAIL_FIELDS:
        given = getattr(submission, name)
        if given and given != getattr(lead, name):
            differences[name] = (getattr(lead, name), given)
    return differences


def pending_details(session: Session, lead: Lead) -> list[tuple[Submission, dict[str, tuple[str | None, str]]]]:
    """Requests newer than the last accepted one whose answers differ from the lead's details, newest first."""
    of_lead = Submission.lead_id == lead.id
    accepted_ids = select(func.max(Submission.id)).where(of_lead, Submission.details_accepted_at.is_not(None))
    accepted = session.scalar(accepted_ids)
    stmt = select(Submission).where(of_lead, Submission.id > (accepted or 0))
    found = []
    for submission in session.scalars(stmt.order_by(Submission.id.desc())):
        differences = detail_differences(lead, submission)
        if differences:
            found.append((submission, differences))
    return found


def accept_details(session: Session, lead: Lead, submission: Submission, user: Any) -> list[str]:
    """Give the lead the details a request of theirs gave, recording who accepted them; returns the fields changed."""
    if submission.lead_id != lead.id:
        raise ValueError("this request belongs to another lead")
    differences = detail_differences(lead, submission)
    moment = now()
    for name, (_, given) in differences.items():
        setattr(lead, name, given)
    if "phone" in differences:
        lead.timezone = timezone_for_phone(lead.phone) or lead.timezone
    lead.updated_at = moment
    submission.details_accepted_at = moment
    submission.details_accepted_by_id = getattr(user, "id", None)
    session.flush()
    log.info("lead %s took the details of submission %s (%s)", lead.id, submission.id, ", ".join(differences))
    return list(differences)


def change_status(session: Session, lead: Lead, new_status: str, *, source: str, user: Any = None) -> bool:
    """Move a lead to new_status (one of STATUSES) and announce it; False when it already had it."""
    if new_status not in STATUSES:
        raise ValueError(f"{new_status!r} is not a lead status (use {', '.join(STATUSES)})")
    old_status = lead.status
    if old_status == new_status:
        return False
    moment = now()
    user_id = getattr(user, "id", None)
    lead.status = new_status
    lead.status_changed_at = moment
    lead.updated_at = moment
    if new_status == "contacted":
        lead.contacted_at = moment
        lead.contacted_by_id = user_id
    session.add(
        StatusChange(
            lead_id=lead.id,
            old_status=old_status,
            new_status=new_status,
            source=source[:32],
            user_id=user_id,
            created_at=moment,
        )
    )
    session.flush()
    log.info("lead %s status %s -> %s (%s)", lead.id, old_status, new_status, source)
    signals.lead_status_changed.send(
        current_app._get_current_object(),
        session=session,
        lead=lead,
        old_status=old_status,
        new_status=new_status,
        source=source,
        user=user,
    )
    return True


def add_note(session: Session, lead: Lead, body: str, user: Any) -> Note:
    """Add a staff note to a lead; raises ValueError when the note is empty."""
    text = (body or "").strip()
    if not text:
        raise ValueError("A note needs some text.")
    note = Note(lead_id=lead.id, user_id=getattr(user, "id", None), body=text, created_at=now())
    session.add(note)
    session.flush()
    return note


def find_lead(session: Session, email: str) -> Lead | None:
    """The lead with this address (normalized first), or None; invalid addresses find nothing."""
    try:
        normalized = normalize_email(email)
    except ValueError:
        return None
    return session.scalars(select(Lead).where(Lead.email == normalized)).first()


def erase_lead(session: Session, lead: Lead) -> None:
    """Remove the lead's personal data everywhere, keeping anonymous rows for counts.

    The lead's own rows are cleared here; every other package clears its own in its lead_erased receiver, in
    the same transaction (the every-text-column test finds a package that forgets).
    """
    email = lead.email
    moment = now()
    session.execute(delete(Note).where(Note.lead_id == lead.id))
    session.execute(
        update(Submission)
        .where(Submission.lead_id == lead.id)
        .values(
            message=None,
            referrer=None,
            user_agent=None,
            first_name=None,
            last_name=None,
            phone=None,
            # UTM tags are whatever the visitor's link said: free text that may name them.
            **dict.fromkeys(UTM_FIELDS),
        )
    )
    lead.email = None
    lead.first_name = None
    lead.last_name = None
    lead.phone = None
    lead.timezone = None
    # The source came from the visitor's link or referrer: only the fixed "direct" says nothing about them.
    lead.source = "direct" if lead.source == "direct" else ERASED_SOURCE
    lead.email_opt_in = False
    lead.erased_at = moment
    lead.updated_at = moment
    session.flush()
    signals.lead_erased.send(current_app._get_current_object(), session=session, lead=lead, email=email)
    log.info("lead %s erased", lead.id)
