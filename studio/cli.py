"""`flask campaigns ...`: check campaign folders, import them into the store and export what is published
(the nurture package adds `simulate`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from core.db import db
from studio import services
from studio.files import campaign_folders, check_folder

campaigns_cli = AppGroup("campaigns", help="Check, import and export campaigns.")


def _root(directory: Path | None) -> Path:
    return directory or Path(current_app.config["CAMPAIGNS_DIR"])


@campaigns_cli.command("validate")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def validate_command(directory: Path | None) -> None:
    """Check every campaign folder under DIRECTORY (default: CAMPAIGNS_DIR); one line per problem."""
    root = _root(directory)
    if not root.is_dir():
        click.echo(f"{root}: campaigns folder not found")
        sys.exit(1)
    problems, warnings, count = [], [], 0
    for folder in campaign_folders(root):
        _, campaign, found, warned = check_folder(folder, current_app.config.get("BLOG_DIR"))
        problems += found
        warnings += warned
        count += campaign is not None
    for line in [*problems, *warnings]:
        click.echo(line)
    if problems:
        click.echo(f"{len(problems)} problem(s) found", err=True)
        sys.exit(1)
    click.echo(f"{count} campaigns OK" + (f" ({len(warnings)} warning(s) above)" if warnings else ""))


@campaigns_cli.command("import")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--publish", is_flag=True, help="Publish each imported campaign (live within seconds).")
@click.option("--if-new", is_flag=True, help="Only campaigns not in the database yet (never overwrites edits).")
def import_command(directory: Path | None, publish: bool, if_new: bool) -> None:
    """Read the campaign folders under DIRECTORY (default: CAMPAIGNS_DIR) into drafts, or publish them."""
    root = _root(directory)
    with db.write_transaction() as session:
        result = services.import_folders(session, root, "flask campaigns import", publish, if_new)
        if result.problems:
            session.rollback()
    for line in result.problems:
        click.echo(line)
    if result.problems:
        click.echo(f"{len(result.problems)} problem(s) found; nothing was imported", err=True)
        sys.exit(1)
    for label, slugs in (
        ("new draft", result.created),
        ("draft updated", result.updated),
        ("published", result.published),
        ("unchanged", result.unchanged),
        ("already in the database, left as it is", result.skipped),
    ):
        for slug in slugs:
            click.echo(f"{slug}: {label}")


@campaigns_cli.command("export")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--drafts", is_flag=True, help="Write the drafts instead of the published versions.")
def export_command(directory: Path | None, drafts: bool) -> None:
    """Write each campaign's published version (or draft) as a folder under DIRECTORY (default: CAMPAIGNS_DIR)."""
    root = _root(directory)
    written = services.export_folders(db.session, root, drafts)
    for slug in written:
        click.echo(f"{root / slug}: written")
    click.echo(f"{len(written)} campaign(s) exported")
