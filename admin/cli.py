"""`flask users ...` (staff accounts), `flask demo ...` (first-run setup, sample data) and `flask dashboard ...`
(the dashboard's stored figures)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from admin import snapshots
from admin.models import ROLES, User
from admin.seed import seed
from admin.services import demo_setup
from admin.users import UserError, create_user, find_user, normalize_user_email, set_password
from core.db import db
from mailer.health import setting_problems
from studio.definitions import shown_path
from studio.registry import registry
from studio.settings import refresh as refresh_settings

users_cli = AppGroup("users", help="Staff accounts for /admin.")
demo_cli = AppGroup("demo", help="First-run setup and sample data.")
dashboard_cli = AppGroup("dashboard", help="The dashboard's figures, stored for every process.")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")


@users_cli.command("create")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default="marketer",
    show_default=True,
    help="admin may erase leads and manage users.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def users_create(email: str, role: str, password_stdin: bool) -> None:
    """Create a user who signs in with EMAIL (the password is asked twice, at least 12 characters)."""
    try:
        address = normalize_user_email(email)
        password = _read_password(password_stdin)
        with db.write_transaction() as s:
            user = create_user(s, address, password, role)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {user.role} {user.email}")


@users_cli.command("list")
def users_list() -> None:
    """List users with their role, state and last sign-in."""
    rows = list(db.session.scalars(select(User).order_by(User.email)))
    if not rows:
        click.echo("no users (create one with: flask users create EMAIL --role admin)")
    for user in rows:
        last = f"{user.last_login_at:%Y-%m-%d %H:%M} UTC" if user.last_login_at else "never"
        state = "active" if user.active else "inactive"
        click.echo(f"{user.email}\t{user.role}\t{state}\tlast sign-in {last}")


@users_cli.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def users_set_password(email: str, password_stdin: bool) -> None:
    """Set a new password for EMAIL."""
    with db.write_transaction() as s:
        user = find_user(s, email)
        if user is None:
            raise click.ClickException(f"no user {email}")
        try:
            set_password(user, _read_password(password_stdin))
        except UserError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"password changed for {user.email}")


@demo_cli.command("setup")
def demo_setup_command() -> None:
    """Idempotent first run: an admin with a random password (printed once) if no user exists; campaign switches."""
    with db.write_transaction() as s:
        created = demo_setup(s)
        query = select(User.email).where(User.role == "admin", User.active.is_(True)).order_by(User.id)
        admins = list(s.scalars(query))
    for line in demo_banner(created, admins):
        click.echo(line)


def demo_banner(created: tuple[str, str] | None, admins: list[str]) -> list[str]:
    """What `make run` prints before the servers' logs start: how to sign in, where to sign up, where mail goes."""
    config = current_app.config
    site = config["SITE_URL"]
    rule = "=" * 78
    lines = ["", rule, f"  The site:       {site}/"]
    for number, slug in enumerate(sorted(c.slug for c in registry().active())):
        lines.append(f"  {'Sign up on:' if number == 0 else '':<16}{site}/{slug}")
    lines.append(f"  Admin sign-in:  {site}/admin/login")
    if created:
        email, password = created
        lines += [
            f"      email:      {email}",
            f"      password:   {password}",
            "  >>> Copy the password now: it is shown only this once. <<<",
        ]
    else:
        lines += [
            f"      as:         {', '.join(admins[:3]) or '(no active admin)'}",
            "  Forgot the password? Set a new one with:",
            f"      FLASK_APP=app:create_app .venv/bin/flask users set-password {admins[0] if admins else 'EMAIL'}",
        ]
    backend = (config.get("MAIL_BACKEND") or "outbox").lower()
    if backend == "outbox":
        lines.append(f"  Emails go to:   {shown_path(Path(config['OUTBOX_DIR']))}/ (also at {site}/admin/outbox)")
    else:
        lines.append(f"  Emails go to:   MAIL_BACKEND={backend}")
    address = (config.get("CLINIC_POSTAL_ADDRESS") or "").strip()
    lines.append(f"  Postal address in every email footer: {address or '(not set)'}")
    lines += [f"  !! {problem}: the nurture worker will refuse to start" for problem in setting_problems(config)]
    lines += [rule, ""]
    return lines


@demo_cli.command("seed")
@click.option("--leads", "count", type=click.IntRange(1, 2_000_000), default=1000, show_default=True)
@click.option(
    "--days", type=click.IntRange(1, 3650), default=120, show_default=True, help="Spread signups over this many days."
)
@click.option("--seed", "random_seed", type=int, default=None, help="Random seed, for repeatable data.")
def demo_seed_command(count: int, days: int, random_seed: int | None) -> None:
    """Fill the database with realistic leads, submissions, consents, enrollments, deliveries and page views."""
    started = time.perf_counter()
    totals = seed(count, days=days, random_seed=random_seed, progress=lambda line: click.echo(line, err=True))
    took = time.perf_counter() - started
    click.echo(", ".join(f"{v:,} {k}" for k, v in totals.items()) + f" in {took:.1f}s")


@dashboard_cli.command("refresh")
@click.option("--campaign", "campaigns", multiple=True, help="Also this campaign's periods (repeatable).")
def dashboard_refresh(campaigns: tuple[str, ...]) -> None:
    """Recompute the dashboard's figures now: every stored snapshot, and each period for all campaigns (and every
    --campaign) in the clinic's time zone. The nurture worker does this on its own for the figures in use."""
    refresh_settings()  # a time zone saved in the admin counts
    known = {c.slug for c in registry().all()}
    for slug in campaigns:
        if slug not in known:
            raise click.BadParameter(f"no campaign {slug!r} (known: {', '.join(sorted(known)) or 'none'})")
    tz = current_app.config["CLINIC_TIMEZONE"]
    wanted = [(days, slug, tz) for slug in ("", *campaigns) for days in snapshots.PERIODS]
    for key in dict.fromkeys([*snapshots.stored_keys(), *wanted]):
        started = time.perf_counter()
        snapshots.refresh(key)
        days, slug, zone = key
        took = (time.perf_counter() - started) * 1000
        click.echo(f"{days} days, {slug or 'all campaigns'}, {zone}: {took:,.0f} ms")
