"""Email: message building, the senders chosen by MAIL_BACKEND, unsubscribe pages and the SendGrid webhook."""

from __future__ import annotations

from flask import Flask

from mailer.base import register_composer


def init_app(app: Flask) -> None:
    """Install the sender, the nurture composer, the unsubscribe and webhook views, the webhook's health entry and
    the outbox's erasure."""
    from core import signals
    from core.extensions import csrf
    from mailer import outbox, views
    from mailer.compose import compose_nurture_delivery
    from mailer.health import webhook_probe
    from mailer.senders import make_sender

    app.extensions["mail_sender"] = make_sender(app.config)
    app.extensions.setdefault("health_checks", {})["sendgrid_webhook"] = webhook_probe
    register_composer(app, "nurture", compose_nurture_delivery)
    # One-click unsubscribe (RFC 8058) and provider webhooks carry no cookie and no CSRF token.
    csrf.exempt(views.unsubscribe)
    csrf.exempt(views.sendgrid_events)
    app.register_blueprint(views.bp)
    signals.lead_erased.connect(outbox.on_lead_erased, weak=False)
