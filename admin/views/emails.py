"""A sent email as its reader got it: the outbox's copy when there is one, else rebuilt from today's files."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

from flask import Response, abort, current_app, make_response, render_template
from markupsafe import Markup

from admin.blueprint import PREVIEW_CSP, bp
from admin.views.outbox import _parse, _part
from core.db import db
from leads.models import Lead
from mailer.base import composer_for
from mailer.models import Delivery
from nurture.composers import compose_step
from studio.registry import registry

# The outbox is a development tool; past this many files the copy is rebuilt instead of searched for.
OUTBOX_SCAN_LIMIT = 5000


def _delivery(delivery_id: int) -> Delivery:
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None:
        abort(404)
    return delivery


def outbox_copy(delivery: Delivery) -> Path | None:
    """The outbox file written for this delivery (found by its Message-ID), when the outbox is the backend."""
    if current_app.config.get("MAIL_BACKEND") != "outbox" or not delivery.provider_message_id:
        return None
    root = Path(current_app.config["OUTBOX_DIR"])
    if not root.is_dir():
        return None
    wanted = f"<{delivery.provider_message_id.strip('<>')}>"
    for number, path in enumerate(sorted(root.glob("*.eml"), reverse=True)):
        if number >= OUTBOX_SCAN_LIMIT:
            break
        try:
            with path.open("rb") as handle:
                for line in handle:
                    if not line.strip():
                        break  # end of the headers
                    if line.lower().startswith(b"message-id:") and wanted.encode() in line:
                        return path
        except OSError:
            continue
    return None


def rebuilt(delivery: Delivery) -> tuple[Any, str | None]:
    """The delivery's email composed again as the worker would now (the message, or None and why not)."""
    try:
        if delivery.kind == "nurture":
            # Not the worker's composer: that one refuses a suppressed address, and staff may still read the copy.
            campaign = registry().get(delivery.campaign_slug or "")
            step = campaign.step(delivery.step_id or "") if campaign is not None else None
            lead = db.session.get(Lead, delivery.lead_id) if delivery.lead_id is not None else None
            if campaign is None or step is None or lead is None or lead.erased_at:
                return None, "its campaign step or its lead no longer exists"
            return compose_step(campaign, step, lead, delivery), None
        return composer_for(delivery.kind)(delivery), None
    except Exception as exc:  # noqa: BLE001 - an email that cannot be built shows why, never a 500
        return None, str(exc) or type(exc).__name__


def _parts(delivery: Delivery) -> tuple[dict[str, Any], str | None]:
    path = outbox_copy(delivery)
    if path is not None:
        message: EmailMessage = _parse(path)
        parts = {"subject": str(message.get("Subject", "")), "to": str(message.get("To", ""))}
        return {**parts, "text": _part(message, "plain"), "html": _part(message, "html"), "copy": True}, None
    message, error = rebuilt(delivery)
    if message is None:
        return {}, error
    return {"subject": message.subject, "to": message.to, "text": message.text, "html": message.html}, None


@bp.get("/deliveries/<int:delivery_id>/email")
def delivery_email(delivery_id: int) -> str:
    """One delivery's email: subject, recipient, text and the HTML in a sandboxed frame."""
    delivery = _delivery(delivery_id)
    parts, error = _parts(delivery)
    lead = db.session.get(Lead, delivery.lead_id) if delivery.lead_id is not None else None
    return render_template("admin/delivery_email.html", delivery=delivery, lead=lead, parts=parts, error=error)


@bp.get("/deliveries/<int:delivery_id>/email.html")
def delivery_email_html(delivery_id: int) -> Response:
    """The email's HTML alone, for the frame, under a CSP that lets nothing run or load."""
    parts, error = _parts(_delivery(delivery_id))
    body = parts.get("html") or str(Markup("<p>{}</p>").format(error or "This email has no HTML part."))
    response = make_response(body)
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.mimetype = "text/html"
    return response
