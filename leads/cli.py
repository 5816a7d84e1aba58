"""`flask leads export` and `flask leads erase`."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from typing import IO

import click
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import db
from core.text import strip_bidi
from leads import services
from leads.consent import EMAIL_MARKETING
from leads.models import Consent, Lead, Submission

leads_cli = AppGroup("leads", help="Export and erase leads.")

EXPORT_HEADER = (
    "id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "status",
    "interest",
    "preferred_contact",
    "source",
    "landing_slug",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "email_consent",
    "email_consent_version",
    "created_at",
)
# Spreadsheet apps run a cell starting with these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BATCH = 500


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: formulas get a leading quote."""
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else strip_bidi(str(value))
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def export_rows(session: Session) -> Iterator[list[str]]:
    """One row per lead, ordered by id, read in batches so memory stays flat."""
    last_id = 0
    while True:
        leads = session.scalars(select(Lead).where(Lead.id > last_id).order_by(Lead.id).limit(BATCH)).all()
        if not leads:
            return
        ids = [lead.id for lead in leads]
        latest: dict[int, Submission] = {}
        for sub in session.scalars(select(Submission).where(Submission.lead_id.in_(ids)).order_by(Submission.id)):
            latest[sub.lead_id] = sub
        consent: dict[int, Consent] = {}
        consents = select(Consent).where(Consent.lead_id.in_(ids), Consent.purpose == EMAIL_MARKETING)
        for row in session.scalars(consents.order_by(Consent.id)):
            consent[row.lead_id] = row
        for lead in leads:
            sub = latest.get(lead.id)
            given = consent.get(lead.id)
            opted_in = bool(lead.email_opt_in and given is not None and given.granted)
            yield [
                safe_cell(v)
                for v in (
                    lead.id,
                    lead.email,
                    lead.first_name,
                    lead.last_name,
                    lead.phone,
                    lead.status,
                    lead.interest,
                    lead.preferred_contact,
                    lead.source,
                    lead.landing_slug,
                    sub.utm_source if sub else None,
                    sub.utm_medium if sub else None,
                    sub.utm_campaign if sub else None,
                    "yes" if opted_in else "no",
                    given.version if given is not None else None,
                    lead.created_at,
                )
            ]
        last_id = ids[-1]
        session.expunge_all()


def write_export(session: Session, out: IO[str]) -> int:
    """Write the CSV to out; returns the number of leads written."""
    writer = csv.writer(out)
    writer.writerow(EXPORT_HEADER)
    count = 0
    for row in export_rows(session):
        writer.writerow(row)
        count += 1
    return count


@leads_cli.command("export")
@click.option(
    "--out", "out_path", type=click.Path(dir_okay=False, writable=True), help="File to write (default: stdout)."
)
def export_command(out_path: str | None) -> None:
    """Write every lead as CSV (UTF-8, header row): status, interest, latest UTM and email consent."""
    session = db.session()
    if out_path:
        with open(out_path, "w", encoding="utf-8", newline="") as handle:
            count = write_export(session, handle)
        click.echo(f"wrote {count} leads to {out_path}", err=True)
    else:
        write_export(session, sys.stdout)


@leads_cli.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase_command(email: str, yes: bool) -> None:
    """Remove the personal data of the lead with EMAIL everywhere, keeping anonymous counts."""
    session = db.session()
    lead = services.find_lead(session, email)
    if lead is None:
        raise click.ClickException("no lead with that email address (nothing was changed)")
    lead_id = lead.id
    session.rollback()
    if not yes:
        click.confirm(f"Erase lead #{lead_id} and all its personal data? This cannot be undone.", abort=True)
    with db.write_transaction() as s:
        lead = s.get(Lead, lead_id)
        if lead is None or lead.erased_at is not None:
            raise click.ClickException("the lead was already erased")
        services.erase_lead(s, lead)
    click.echo(f"lead #{lead_id} erased")
