"""`flask leads export` and `flask leads erase`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import IO

import click
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import db
from leads import export, services
from leads.models import Lead

leads_cli = AppGroup("leads", help="Export and erase leads.")

EXPORT_HEADER = export.COLUMNS
BATCH = 500


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


def export_rows(session: Session) -> Iterator[list[str]]:
    """One row per lead (the columns of leads.export, as the admin's CSV), ordered by id."""
    return export.export_rows(session, _all_leads(session))


def write_export(session: Session, out: IO[str]) -> int:
    """Write the CSV to out; returns the number of leads written."""
    return export.write_csv(session, _all_leads(session), out)


@leads_cli.command("export")
@click.option(
    "--out", "out_path", type=click.Path(dir_okay=False, writable=True), help="File to write (default: stdout)."
)
def export_command(out_path: str | None) -> None:
    """Write every lead as CSV (UTF-8, UTC dates): the same columns as the admin's download."""
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
