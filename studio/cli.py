"""`flask campaigns ...`: check the campaign files (the nurture package adds `simulate`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from studio.definitions import campaign_warnings
from studio.files import load_campaigns

campaigns_cli = AppGroup("campaigns", help="Check and preview the campaign files.")


@campaigns_cli.command("validate")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def validate_command(directory: Path | None) -> None:
    """Check every campaign under DIRECTORY (default: CAMPAIGNS_DIR); one line per problem."""
    root = directory or Path(current_app.config["CAMPAIGNS_DIR"])
    campaigns, problems = load_campaigns(root, current_app.config.get("BLOG_DIR"))
    warnings = [line for campaign in campaigns.values() for line in campaign_warnings(campaign)]
    for line in [*problems, *warnings]:
        click.echo(line)
    if problems:
        click.echo(f"{len(problems)} problem(s) found", err=True)
        sys.exit(1)
    click.echo(f"{len(campaigns)} campaigns OK" + (f" ({len(warnings)} warning(s) above)" if warnings else ""))
