"""`flask leads erase` (the admin adds `flask leads export`, whose columns need the engines)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from core.db import db
from leads import services
from leads.models import Lead

leads_cli = AppGroup("leads", help="Export and erase leads.")


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
