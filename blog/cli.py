"""`flask blog ...`: check post files, import them into the store and export what is published."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from core.db import db
from studio import post_services
from studio.posts import load_posts

blog_cli = AppGroup("blog", help="Check, import and export blog posts (Markdown files).")


def _root(directory: Path | None) -> Path:
    return directory or Path(current_app.config["BLOG_DIR"])


@blog_cli.command("validate")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def validate_command(directory: Path | None) -> None:
    """Check every post file under DIRECTORY (default: BLOG_DIR) and list the problems found."""
    posts, problems = load_posts(_root(directory), Path(current_app.static_folder or "static"))
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        sys.exit(1)
    click.echo(f"{len(posts)} posts OK")


@blog_cli.command("import")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--publish", is_flag=True, help="Publish each imported post (live within seconds).")
@click.option("--if-new", is_flag=True, help="Only posts not in the database yet (never overwrites edits).")
def import_command(directory: Path | None, publish: bool, if_new: bool) -> None:
    """Read the post files under DIRECTORY (default: BLOG_DIR) into drafts, or publish them."""
    with db.write_transaction() as session:
        result = post_services.import_post_files(session, _root(directory), "flask blog import", publish, if_new)
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


@blog_cli.command("export")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--drafts", is_flag=True, help="Write the drafts instead of the published versions.")
def export_command(directory: Path | None, drafts: bool) -> None:
    """Write each post's published version (or draft) as DIRECTORY/<slug>.md (default: BLOG_DIR)."""
    root = _root(directory)
    written = post_services.export_post_files(db.session, root, drafts)
    for slug in written:
        click.echo(f"{root / slug}.md: written")
    click.echo(f"{len(written)} post(s) exported")
