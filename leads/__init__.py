"""Lead capture: landing pages, the consultation form, lead storage and the `flask leads` commands."""

from __future__ import annotations

from flask import Flask

from leads.cli import leads_cli
from leads.views import bp


def init_app(app: Flask) -> None:
    """Register this package's blueprint and commands."""
    # /<slug> is a catch-all for one path segment; werkzeug ranks fixed paths (/healthz, /admin) above it.
    app.register_blueprint(bp)
    app.cli.add_command(leads_cli)
