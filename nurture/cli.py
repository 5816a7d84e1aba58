"""`flask campaigns simulate` for marketers (added to studio's `flask campaigns`) and `flask nurture ...` for
operators."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from core.db import db
from leads.models import Lead
from mailer.health import setting_problems
from mailer.ledger import resume_provider
from mailer.links import provider_campaign_id
from nurture import dispatch
from nurture.enrollment import time_scale
from nurture.models import Enrollment
from nurture.schedule import timeline, zone
from studio.cli import campaigns_cli
from studio.registry import registry
from studio.settings import refresh as refresh_settings

log = logging.getLogger(__name__)

nurture_cli = AppGroup("nurture", help="The nurture worker: send what is due.")


def _parse_signup(value: str, tz_name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date and time (use 2026-11-23T22:15)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(tz_name, "UTC"))
    return moment.astimezone(UTC)


@click.command("simulate")
@with_appcontext
@click.argument("slug")
@click.option("--signup-at", "signup_at", default=None, help="When the lead signs up, e.g. 2026-11-23T22:15 (local).")
@click.option("--tz", "tz_name", default=None, help="The lead's time zone (default: the campaign's).")
@click.option("--interest", default=None, help="The lead's area of interest (a value the campaign's form offers).")
@click.option("--lead", "lead_ref", default=None, help="A lead (email or id): names the A/B variant it gets.")
def simulate_command(
    slug: str, signup_at: str | None, tz_name: str | None, interest: str | None, lead_ref: str | None
) -> None:
    """Print when each email of campaign SLUG would leave for one lead, in local time and UTC."""
    campaign = registry().get(slug)
    if campaign is None:
        known = ", ".join(c.slug for c in registry().all()) or "none"
        raise click.UsageError(f"no campaign {slug!r} (known: {known})")
    enrollment_id = _enrollment_of(lead_ref, slug) if lead_ref else None
    if tz_name:
        try:
            zone(tz_name, "invalid/zone")
        except Exception:  # noqa: BLE001 - ZoneInfo raises several types for bad names
            raise click.BadParameter(f"{tz_name!r} is not a time zone (use a name like America/Denver)") from None
    tz_label = tz_name or campaign.window.timezone
    start = _parse_signup(signup_at, tz_label) if signup_at else datetime.now(UTC)
    scale = time_scale()
    local_start = start.astimezone(zone(tz_label, "UTC"))
    click.echo(f"{campaign.name} ({campaign.slug}) in {tz_label}, signup {local_start:%a %d %b %H:%M %Z}")
    if campaign.double_opt_in:
        click.echo("double opt-in: the confirmation email leaves at once; the steps start when the lead confirms")
    if scale != 1:
        click.echo(f"NURTURE_TIME_SCALE={scale:g}: delays divided by {scale:g}, send window ignored")
    click.echo(f"SendGrid sees this campaign as {provider_campaign_id(campaign.slug)} and each email by its number")
    days = ", ".join(campaign.window.days)
    click.echo(f"send window: {days} {campaign.window.start:%H:%M}-{campaign.window.end:%H:%M} (lead's time zone)")
    for planned in timeline(campaign, start, tz_name, interest, scale):
        step = planned.step
        when = f"{planned.local:%a %Y-%m-%d %H:%M %Z}  ({planned.at:%Y-%m-%d %H:%M} UTC)"
        label = f"{step.index + 1}. {step.id:<20}"
        if planned.skipped:
            click.echo(f"{label} skipped: {planned.skipped}  [{step.subject}]")
        else:
            click.echo(f"{label} {when}  {step.subject}")
        if step.variants:
            names = ", ".join(f"{v.name.upper()} {v.subject!r}" for v in step.variants)
            if enrollment_id is not None:
                chosen = step.as_variant(step.variant_for(enrollment_id))
                gets = (step.variant_for(enrollment_id) or "").rpartition(":")[2].upper()
                click.echo(f"   A/B test of the subject: this lead gets variant {gets}: {chosen.subject!r}")
            else:
                click.echo(f"   A/B test of the subject ({names}); pass --lead to see which one a lead gets")


def _enrollment_of(ref: str, slug: str) -> int:
    """The enrollment id of a lead (email or id) in this campaign, for naming its A/B variants."""
    lead = db.session.get(Lead, int(ref)) if ref.isdecimal() and len(ref) < 19 else None
    if lead is None:
        lead = db.session.scalars(select(Lead).where(Lead.email == ref.strip().lower())).first()
    if lead is None:
        raise click.BadParameter(f"no lead {ref!r}", param_hint="--lead")
    enrollment_id = db.session.scalar(
        select(Enrollment.id).where(Enrollment.lead_id == lead.id, Enrollment.campaign_slug == slug)
    )
    if enrollment_id is None:
        raise click.BadParameter(f"lead {ref!r} is not in {slug} (variants are assigned per enrollment)")
    return enrollment_id


def refuse_bad_settings() -> None:
    """Stop a worker before its first tick when a setting every email needs is wrong: one line per variable."""
    refresh_settings()  # a postal address saved in the admin counts
    problems = setting_problems(current_app.config)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        click.echo("the nurture worker did not start: set the variable(s) above and start it again", err=True)
        sys.exit(1)


@nurture_cli.command("tick")
def tick_command() -> None:
    """Run one pass: send what is due now, then exit (refused while a setting every email needs is wrong)."""
    refuse_bad_settings()
    counts = dispatch.tick()
    click.echo("tick " + (dispatch.describe(counts) or "idle"))


@nurture_cli.command("run")
def run_command() -> None:
    """Run the worker: a tick every NURTURE_TICK_SECONDS until SIGTERM or Ctrl-C (refused on a wrong setting)."""
    from nurture.scheduler import run_worker  # APScheduler is loaded by the worker process only

    refuse_bad_settings()
    run_worker(current_app._get_current_object())


@nurture_cli.command("resume-provider")
def resume_provider_command() -> None:
    """Lift the sending pause set when the provider refused our API key or a setting was wrong (fix it first)."""
    if resume_provider():
        click.echo("provider pause lifted: sending resumes at the next tick")
    else:
        click.echo("sending was not paused")


def init_app(app: Flask) -> None:
    """Add `flask campaigns simulate` to studio's campaign commands and register `flask nurture`."""
    campaigns_cli.add_command(simulate_command)
    app.cli.add_command(nurture_cli)
