"""Nurture: campaigns as files, enrollment, and the worker that sends each step once."""

from __future__ import annotations

from flask import Flask

from mailer.base import register_composer


def init_app(app: Flask) -> None:
    """Register the /confirm view, the commands, the signal receivers, composers and health checks."""
    from nurture import cli, enrollment, health, views

    app.register_blueprint(views.bp)
    app.cli.add_command(cli.campaigns_cli)
    app.cli.add_command(cli.nurture_cli)
    enrollment.connect()
    register_composer(app, "confirmation", views.compose_confirmation)
    register_composer(app, "reminder", views.compose_reminder)
    checks = app.extensions.setdefault("health_checks", {})
    checks["worker"] = health.worker_probe
    checks["provider"] = health.provider_probe
