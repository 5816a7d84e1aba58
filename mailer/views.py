"""One-click unsubscribe pages and the SendGrid Event Webhook."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from core.db import db
from leads.models import Lead
from mailer import webhook
from mailer.health import clear_stale_batches, record_stale_batch
from mailer.suppression import is_suppressed, suppress
from mailer.tokens import read_token

log = logging.getLogger(__name__)

bp = Blueprint("mailer", __name__)

# SendGrid posts batches of up to a few thousand events; the site-wide limit is sized for forms.
WEBHOOK_MAX_BYTES = 5 * 1024 * 1024


def _invalid_link() -> tuple[str, int]:
    return render_template("mailer/invalid.html"), 400


@bp.get("/unsubscribe/<token>")
def unsubscribe_page(token: str) -> tuple[str, int] | str:
    """Show one button; a GET never unsubscribes (mail scanners follow links)."""
    lead_id = read_token(token)
    if lead_id is None:
        return _invalid_link()
    lead = db.session.get(Lead, lead_id)
    done = (
        lead is None or lead.unsubscribed_at is not None or (bool(lead.email) and is_suppressed(db.session, lead.email))
    )
    return render_template("mailer/unsubscribe.html", token=token, already=done)


@bp.post("/unsubscribe/<token>")
def unsubscribe(token: str) -> tuple[str, int] | str:
    """Unsubscribe at once: RFC 8058 one-click from the mail client, or the page's button."""
    lead_id = read_token(token)
    if lead_id is None:
        return _invalid_link()
    from_page = request.form.get("via") == "page"
    source = "link" if from_page else "one_click"
    for attempt in range(2):
        try:
            with db.write_transaction() as session:
                lead = session.get(Lead, lead_id)
                if lead is not None:
                    suppress(session, lead.email, "unsubscribe", source, lead=lead)
            break
        except IntegrityError:
            # Two clicks at once on PostgreSQL: the other one stored the suppression; run again to finish.
            if attempt:
                raise
    log.info("unsubscribe lead=%s source=%s", lead_id, source)
    return render_template("mailer/unsubscribed.html")


@bp.before_app_request
def _webhook_body_limit() -> None:
    if request.endpoint == "mailer.sendgrid_events":
        request.max_content_length = WEBHOOK_MAX_BYTES


def _record_stale(age_seconds: float) -> None:
    """Keep the refusal for /healthz and the dashboard; failing to note it must not change the answer."""
    try:
        with db.write_transaction() as session:
            record_stale_batch(session, age_seconds)
    except SQLAlchemyError as exc:
        log.error("could not record a stale webhook batch: %s", type(exc).__name__)


@bp.post("/webhooks/sendgrid")
def sendgrid_events() -> tuple[Response, int]:
    """Receive SendGrid's signed event batches; 403 unsigned, 400 malformed, 200 once stored."""
    body = request.get_data(cache=False)
    try:
        webhook.verify(
            current_app.config.get("SENDGRID_WEBHOOK_PUBLIC_KEY", ""),
            request.headers.get(webhook.SIGNATURE_HEADER),
            request.headers.get(webhook.TIMESTAMP_HEADER),
            body,
        )
        events = webhook.parse(body)
    except webhook.StaleBatch as exc:
        log.warning("sendgrid webhook refused a signed batch %+d s from this server's clock", round(exc.age_seconds))
        _record_stale(exc.age_seconds)
        return jsonify(error=str(exc)), exc.status
    except webhook.WebhookError as exc:
        log.warning("sendgrid webhook refused: %s", exc)
        return jsonify(error=str(exc)), exc.status
    counts: dict[str, int] = {}
    for attempt in range(3):
        try:
            with db.write_transaction() as session:
                counts = webhook.process(session, events)
                clear_stale_batches(session)
            break
        except (IntegrityError, OperationalError):
            # A concurrent delivery of the same batch won the race; replaying finds its rows and skips them.
            if attempt == 2:
                log.error("sendgrid webhook could not store a batch of %d events", len(events))
                return jsonify(error="try again"), 503
    log.info("sendgrid webhook: %s", counts)
    return jsonify(ok=True, **counts), 200
