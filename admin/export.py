"""The leads CSV: one definition of its columns and cells for `flask leads export` and the admin's download.

It sits with the admin, above the engines, because a row tells each lead's email status and current step.

Dates are UTC written as spreadsheets read them ("2026-11-23 16:00:00"); every cell a spreadsheet would run as
a formula starts with a quote (CSV injection), an E.164 phone ("+1303...") included, in both exports alike.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice
from typing import IO, Any

import click
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import db
from core.formatting import utc_cell
from core.text import strip_bidi
from leads.consent import EMAIL_MARKETING
from leads.models import Consent, Lead, Submission
from mailer.models import Suppression, email_hash
from nurture.progress import current_progress

COLUMNS = (
    "id",
    "created_at_utc",
    "first_name",
    "last_name",
    "email",
    "phone",
    "preferred_contact",
    "status",
    "interest",
    "source",
    "landing_page",
    "campaign",
    "current_step",
    "email_status",
    "email_status_at_utc",
    "email_consent_version",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "contacted_at_utc",
)
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# Spreadsheet apps run a cell starting with these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Suppression reasons as the email status a marketer reads.
_STATUS_FOR_REASON = {
    "unsubscribe": "unsubscribed",
    "group_unsubscribe": "unsubscribed",
    "manual": "unsubscribed",
    "bounce": "bounced",
    "dropped": "bounced",
    "spamreport": "suppressed",
}
BATCH = 500


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: dates in UTC, formulas with a leading quote."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return utc_cell(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = strip_bidi(str(value))
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def email_status(lead: Lead, suppression: Any, consent: Consent | None) -> tuple[str, datetime | None]:
    """(subscribed | unsubscribed | bounced | suppressed | not subscribed, since when) for one lead."""
    if suppression is not None:
        return _STATUS_FOR_REASON.get(suppression.reason, "suppressed"), suppression.created_at
    if lead.unsubscribed_at is not None:
        return "unsubscribed", lead.unsubscribed_at
    if lead.email_opt_in and consent is not None and consent.granted:
        return "subscribed", consent.created_at
    return ("not subscribed" if lead.email else ""), None


def _batches(leads: Iterable[Lead]) -> Iterator[list[Lead]]:
    iterator = iter(leads)
    while batch := list(islice(iterator, BATCH)):
        yield batch


def export_rows(session: Session, leads: Iterable[Lead]) -> Iterator[list[str]]:
    """One row of COLUMNS per lead, in the order given; related rows are read once per batch of leads."""
    for batch in _batches(leads):
        ids = [lead.id for lead in batch]
        latest: dict[int, Submission] = {}
        for sub in session.scalars(select(Submission).where(Submission.lead_id.in_(ids)).order_by(Submission.id)):
            latest[sub.lead_id] = sub
        consent: dict[int, Consent] = {}
        consents = select(Consent).where(Consent.lead_id.in_(ids), Consent.purpose == EMAIL_MARKETING)
        for row in session.scalars(consents.order_by(Consent.id)):
            consent[row.lead_id] = row
        hashes = {email_hash(lead.email): lead.id for lead in batch if lead.email}
        suppressed = {
            hashes[row.email_hash]: row
            for row in session.scalars(select(Suppression).where(Suppression.email_hash.in_(list(hashes))))
        }
        positions = current_progress(session, ids)
        for lead in batch:
            sub = latest.get(lead.id)
            given = consent.get(lead.id)
            status, since = email_status(lead, suppressed.get(lead.id), given)
            where = positions.get(lead.id)
            step = (where.step_label or where.state_text) if where is not None else ""
            values = (
                lead.id,
                lead.created_at,
                lead.first_name,
                lead.last_name,
                lead.email,
                lead.phone,
                lead.preferred_contact,
                lead.status,
                lead.interest,
                lead.source,
                lead.landing_slug,
                where.enrollment.campaign_slug if where is not None else None,
                step,
                status,
                since,
                given.version if given is not None else None,
                *(getattr(sub, name) if sub is not None else None for name in UTM_FIELDS),
                lead.contacted_at,
            )
            yield [safe_cell(value) for value in values]


def write_csv(session: Session, leads: Iterable[Lead], out: IO[str]) -> int:
    """Write the header and one row per lead to `out`; returns the number of leads written."""
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    count = 0
    for row in export_rows(session, leads):
        writer.writerow(row)
        count += 1
    return count


def _all_leads(session: Session) -> Iterator[Lead]:
    """Every lead by id, read in batches (keyset) so memory stays flat."""
    last_id = 0
    while True:
        leads = session.scalars(select(Lead).where(Lead.id > last_id).order_by(Lead.id).limit(BATCH)).all()
        if not leads:
            return
        yield from leads
        last_id = leads[-1].id
        session.expunge_all()


def all_rows(session: Session) -> Iterator[list[str]]:
    """One row per lead, ordered by id: what `flask leads export` writes."""
    return export_rows(session, _all_leads(session))


@click.command("export")
@with_appcontext
@click.option(
    "--out", "out_path", type=click.Path(dir_okay=False, writable=True), help="File to write (default: stdout)."
)
def export_command(out_path: str | None) -> None:
    """Write every lead as CSV (UTF-8, UTC dates): the same columns as the admin's download."""
    session = db.session()
    if out_path:
        with open(out_path, "w", encoding="utf-8", newline="") as handle:
            count = write_csv(session, _all_leads(session), handle)
        click.echo(f"wrote {count} leads to {out_path}", err=True)
    else:
        write_csv(session, _all_leads(session), sys.stdout)


def register(leads_cli: AppGroup) -> None:
    """Add `export` to the `flask leads` commands (the leads package cannot know the engines' columns)."""
    leads_cli.add_command(export_command)
