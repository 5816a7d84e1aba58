"""Deliveries: the send ledger filtered by state, campaign, step and period, and the operator's fixes.

A failed delivery (the provider refused it, or the email could not be built) can be queued again, one or all
those a filter shows; an unknown one (a worker stopped mid-send) can be marked sent or queued again. A sent
delivery never: the state is checked by the UPDATE itself (admin.services.requeue).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import ColumnElement, func, select

from admin.blueprint import bp
from admin.forms import ActionForm
from admin.queries import FIRST_YEAR, LAST_YEAR, local_day_start
from admin.services import REQUEUE_STATES, error_text, mark_sent, requeue
from core.db import db
from leads.models import Lead
from mailer.models import DELIVERY_STATES, Delivery
from studio.registry import registry

PER_PAGE = 50
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class DeliveryFilter:
    """What the deliveries list shows; the bulk action applies to exactly the same rows."""

    state: str = ""
    campaign: str = ""
    step: str = ""
    date_from: date | None = None
    date_to: date | None = None

    @classmethod
    def from_args(cls, args: Any) -> DeliveryFilter:
        """Parse query-string or form values; unknown values are dropped."""

        def day(name: str) -> date | None:
            try:
                parsed = date.fromisoformat((args.get(name) or "").strip())
            except ValueError:
                return None
            # A far date would overflow the day-after arithmetic; such a filter is simply dropped.
            return parsed if FIRST_YEAR <= parsed.year <= LAST_YEAR else None

        state = (args.get("state") or "").strip()
        return cls(
            state=state if state in DELIVERY_STATES else "",
            campaign=(args.get("campaign") or "").strip()[:64],
            step=(args.get("step") or "").strip()[:64],
            date_from=day("date_from"),
            date_to=day("date_to"),
        )

    def args(self, **changes: Any) -> dict[str, str]:
        """Query-string arguments for a link to this filter with some values changed."""
        values = asdict(replace(self, **changes))
        return {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items() if v}

    def clauses(self, tz: str, *, with_state: bool = True) -> list[ColumnElement[bool]]:
        """WHERE clauses of the filter; the period is the day (clinic time) the delivery last changed."""
        where = []
        if with_state and self.state:
            where.append(Delivery.state == self.state)
        if self.campaign:
            where.append(Delivery.campaign_slug == self.campaign)
        if self.step:
            where.append(Delivery.step_id == self.step)
        if self.date_from:
            where.append(Delivery.updated_at >= local_day_start(self.date_from, tz))
        if self.date_to:
            where.append(Delivery.updated_at < local_day_start(date.fromordinal(self.date_to.toordinal() + 1), tz))
        return where

    @property
    def narrowed(self) -> bool:
        """Whether anything but the state narrows the list."""
        return bool(self.campaign or self.step or self.date_from or self.date_to)


def _tz() -> str:
    return current_app.config["CLINIC_TIMEZONE"]


@bp.get("/deliveries")
def deliveries() -> str:
    """Deliveries, newest first, filtered by state, campaign, step and period, with the reason of each error."""
    f = DeliveryFilter.from_args(request.args)
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    if page > MAX_PAGE:
        abort(404)  # an offset past what the database can count
    tz = _tz()
    stmt = select(Delivery).where(*f.clauses(tz))
    total = db.session.scalar(select(func.count()).select_from(stmt.with_only_columns(Delivery.id).subquery())) or 0
    if page > 1 and (page - 1) * PER_PAGE >= total:
        abort(404)
    rows = list(db.session.scalars(stmt.order_by(Delivery.id.desc()).limit(PER_PAGE).offset((page - 1) * PER_PAGE)))
    counts = dict(
        db.session.execute(
            select(Delivery.state, func.count()).where(*f.clauses(tz, with_state=False)).group_by(Delivery.state)
        ).all()
    )
    lead_ids = {d.lead_id for d in rows if d.lead_id is not None}
    names = {lead.id: lead for lead in db.session.scalars(select(Lead).where(Lead.id.in_(lead_ids or [0])))}
    return render_template(
        "admin/deliveries.html",
        rows=rows,
        leads=names,
        answer=provider_answer,
        f=f,
        state=f.state,
        states=DELIVERY_STATES,
        counts=counts,
        total=total,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        form=ActionForm(),
        campaigns=sorted(c.slug for c in registry().all()),
        error_text=error_text,
    )


# What each backend's acceptance means for the reader of the deliveries screen.
ACCEPTED_BY = {
    "sendgrid": "Accepted by SendGrid",
    "outbox": "Written to the outbox",
    "console": "Logged by the console backend (not sent)",
}


def provider_answer(delivery: Delivery) -> str:
    """What happened to a delivery, in words: the provider's answer or why it has none yet."""
    state = delivery.state
    if delivery.error and state in ("failed", "retrying", "pending"):
        return error_text(delivery)
    if state == "skipped":
        return f"Not sent: {delivery.error or 'its condition did not match'}"
    if state == "bounced" or delivery.bounced_at is not None:
        return "Bounced: the mailbox refused it" + (f" ({delivery.error})" if delivery.error else "")
    if delivery.delivered_at is not None:
        return "Delivered to the mailbox"
    if state == "sent":
        return ACCEPTED_BY.get(current_app.config["MAIL_BACKEND"], "Accepted by the provider")
    if state == "unknown":
        return "No answer: it may or may not have left" + (f" ({delivery.error})" if delivery.error else "")
    return {"pending": "Waiting to be sent", "sending": "Being sent now"}.get(state, state)


def _back(f: DeliveryFilter) -> str:
    """Where a fix returns: the lead's page it was made from, or the same filtered list."""
    lead = request.form.get("lead", "")
    if lead.isdecimal() and len(lead) <= 18:
        return url_for("admin.lead_detail", lead_id=int(lead))
    return url_for("admin.deliveries", **f.args())


@bp.post("/deliveries/<int:delivery_id>/resolve")
def delivery_resolve(delivery_id: int) -> Response:
    """Queue a failed or unknown delivery again, or mark an unknown one as sent.

    Unknown ones need the box ticked: the provider may already have sent them, so queueing may send a duplicate.
    """
    action = request.form.get("action", "")
    if action not in ("sent", "requeue") or not ActionForm().validate_on_submit():
        abort(400)
    back = _back(DeliveryFilter.from_args(request.form))
    user = current_user._get_current_object()
    with db.write_transaction() as s:
        state = s.scalar(select(Delivery.state).where(Delivery.id == delivery_id))
        if state is None:
            abort(404)
        if state == "unknown" and request.form.get("confirm") != "y":
            flash("Tick the box to confirm: the provider may already have sent this email.", "error")
            return redirect(back)
        if action == "sent":
            done = mark_sent(s, delivery_id, user)
        else:
            # The UPDATE checks the state again: only a failed or unknown delivery moves, a sent one never.
            done = requeue(s, user, Delivery.id == delivery_id, states=REQUEUE_STATES) == 1
    if not done:
        can = "queued again" if action == "requeue" else "marked as sent"
        only = "failed or unknown" if action == "requeue" else "unknown"
        flash(f"Delivery #{delivery_id} is {state}: only {only} deliveries can be {can}. Nothing changed.", "error")
    elif action == "sent":
        flash(f"Delivery #{delivery_id} marked as sent.", "success")
    else:
        flash(f"Delivery #{delivery_id} queued again: the worker sends it within seconds.", "success")
    return redirect(back)


@bp.post("/deliveries/requeue")
def deliveries_requeue() -> Response:
    """Queue again every failed delivery the filter shows (a step, a period...), once the cause is fixed."""
    if not ActionForm().validate_on_submit():
        abort(400)
    f = replace(DeliveryFilter.from_args(request.form), state="failed")
    if request.form.get("confirm") != "y":
        flash("Tick the box to confirm that the cause of the failures is fixed.", "error")
        return redirect(_back(f))
    with db.write_transaction() as s:
        count = requeue(s, current_user._get_current_object(), *f.clauses(_tz(), with_state=False))
    current_app.logger.info("%d failed deliveries queued again by user=%s", count, current_user.id)
    flash(f"{count} failed deliveries queued again: the worker sends them within seconds.", "success")
    return redirect(url_for("admin.deliveries", **f.args(state="pending")))
