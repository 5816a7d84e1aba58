"""Admin page for outgoing webhooks: what was sent, what is waiting, what failed and why; retry failed ones."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required
from jinja2 import TemplateNotFound
from sqlalchemy import func, select

from alerts import webhooks
from alerts.models import WebhookEvent
from alerts.services import admin_lead_path
from core.db import db

bp = Blueprint("alerts", __name__, url_prefix="/admin/webhooks")

STATES = ("pending", "sending", "delivered", "failed")
PAGE_SIZE = 100
# The same policy as the rest of the admin: our own styles only, no scripts, no framing by others.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'self'; form-action 'self'; base-uri 'none'; object-src 'none'"
)


@bp.after_request
def _private(response: Response) -> Response:
    # Admin pages show lead ids and receiver errors: never cache them, never frame them.
    response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def _layout() -> str:
    """The admin layout once the admin package provides it, else the site's."""
    try:
        current_app.jinja_env.get_template("admin/base.html")
    except TemplateNotFound:
        return "base.html"
    return "admin/base.html"


@bp.get("/")
@login_required
def index() -> str:
    """Events by state, newest first, with attempts, next try and the last error."""
    state = request.args.get("state", "all")
    if state != "all" and state not in STATES:
        abort(400, description=f"Unknown state {state!r}: use one of all, {', '.join(STATES)}.")
    session = db.session()
    counts = dict.fromkeys(STATES, 0)
    for event_state, count in session.execute(select(WebhookEvent.state, func.count()).group_by(WebhookEvent.state)):
        counts[event_state] = count
    query = select(WebhookEvent).order_by(WebhookEvent.id.desc()).limit(PAGE_SIZE)
    if state != "all":
        query = query.where(WebhookEvent.state == state)
    events = session.scalars(query).all()
    return render_template(
        "alerts/webhooks.html",
        layout=_layout(),
        events=events,
        counts=counts,
        state=state,
        states=STATES,
        urls=current_app.config.get("WEBHOOK_URLS") or [],
        max_attempts=webhooks.MAX_ATTEMPTS,
        page_size=PAGE_SIZE,
        lead_path=admin_lead_path,
        receiver_label=webhooks.receiver_label,
    )


@bp.post("/<int:event_id>/retry")
@login_required
def retry(event_id: int) -> Response:
    """Queue one failed event for delivery on the worker's next tick."""
    event = db.session.get(WebhookEvent, event_id)
    if event is None:
        abort(404)
    if webhooks.retry_now([event_id]):
        flash(f"Event {event.event_id} will be sent again on the worker's next tick.", "success")
    else:
        flash("Only failed events can be retried; this one is already queued or delivered.", "error")
    return redirect(url_for("alerts.index", state=request.form.get("state") or "failed"))


@bp.post("/retry-failed")
@login_required
def retry_failed() -> Response:
    """Queue every failed event again (after fixing the receiver)."""
    ids = list(db.session.scalars(select(WebhookEvent.id).where(WebhookEvent.state == "failed")))
    count = webhooks.retry_now(ids)
    flash(f"{count} failed event(s) queued again." if count else "There are no failed events.", "success")
    return redirect(url_for("alerts.index", state="pending"))
