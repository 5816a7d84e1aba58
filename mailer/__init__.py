"""Email: message building, the senders chosen by MAIL_BACKEND, the deliveries ledger, unsubscribe pages, the
suppression list and the SendGrid webhook."""

from __future__ import annotations

from flask import Flask

from core import signals
from core.extensions import csrf
from mailer import erasure, views, wake
from mailer.health import webhook_probe
from mailer.senders import make_sender


def init_app(app: Flask) -> None:
    """Install the sender, the unsubscribe and webhook views, the webhook's health entry and the erasure of the
    mailer's rows and outbox copies."""
    app.extensions["mail_sender"] = make_sender(app.config)
    app.extensions.setdefault("health_checks", {})["sendgrid_webhook"] = webhook_probe
    # One-click unsubscribe (RFC 8058) and provider webhooks carry no cookie and no CSRF token.
    csrf.exempt(views.unsubscribe)
    csrf.exempt(views.sendgrid_events)
    app.register_blueprint(views.bp)
    signals.lead_erased.connect(erasure.on_lead_erased, weak=False)
    wake.connect()
