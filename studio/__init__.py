"""Campaign content: the definition of a campaign (its settings, landing page and emails), its validation, the
reader of the marketing team's files and the registry every process reads campaigns from.

It sits just above core: landing pages (leads), composers (nurture), the blog and the admin all read it.
"""

from __future__ import annotations

from flask import Flask

from studio import cli, registry


def init_app(app: Flask) -> None:
    """Load the campaigns (refusing to start on a broken file) and register `flask campaigns`."""
    registry.init_app(app)
    app.cli.add_command(cli.campaigns_cli)
