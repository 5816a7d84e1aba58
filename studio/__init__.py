"""Campaign content: what a campaign is (settings, landing page, emails), its checks, the store of drafts and
published versions, files as import and export, and the registry every process reads live campaigns from.

It sits just above core: landing pages (leads), composers (nurture), the blog and the admin all read it.
"""

from __future__ import annotations

from flask import Flask

from core.markdown import render as render_markdown
from studio import cli, post_registry, registry, settings


def init_app(app: Flask) -> None:
    """Hold the live campaigns and posts of this process and register `flask campaigns`."""
    registry.init_app(app)
    post_registry.init_app(app)
    settings.init_app(app)
    # Raw HTML off: a privacy notice written in the admin is shown as text where it holds tags.
    app.jinja_env.filters["markdown"] = render_markdown
    app.cli.add_command(cli.campaigns_cli)
