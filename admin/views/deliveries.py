"""Deliveries: the send ledger filtered by state, and the operator's fix for unknown ones."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from admin.blueprint import bp
from admin.forms import ConfirmForm
from admin.services import resolve_unknown
from core.db import db
from nurture.models import DELIVERY_STATES, Delivery

PER_PAGE = 50
MAX_PAGE = 1_000_000


@bp.get("/deliveries")
def deliveries() -> str:
    """Deliveries, newest first, filtered by state, with the provider's message."""
    state = request.args.get("state", "")
    state = state if state in DELIVERY_STATES else ""
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    if page > MAX_PAGE:
        abort(404)  # an offset past what the database can count
    stmt = select(Delivery)
    if state:
        stmt = stmt.where(Delivery.state == state)
    total = db.session.scalar(select(func.count()).select_from(stmt.with_only_columns(Delivery.id).subquery())) or 0
    if page > 1 and (page - 1) * PER_PAGE >= total:
        abort(404)
    rows = list(db.session.scalars(stmt.order_by(Delivery.id.desc()).limit(PER_PAGE).offset((page - 1) * PER_PAGE)))
    counts = dict(db.session.execute(select(Delivery.state, func.count()).group_by(Delivery.state)).all())
    return render_template(
        "admin/deliveries.html",
        rows=rows,
        state=state,
        states=DELIVERY_STATES,
        counts=counts,
        total=total,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        form=ConfirmForm(),
    )


@bp.post("/deliveries/<int:delivery_id>/resolve")
def delivery_resolve(delivery_id: int) -> Response:
    """Mark an unknown delivery as sent, or queue it again (which may send a duplicate)."""
    action = request.form.get("action", "")
    if action not in ("sent", "requeue"):
        abort(400)
    form = ConfirmForm()
    back = url_for("admin.deliveries", state=request.form.get("state") or None)
    if not form.validate_on_submit() or not form.confirm.data:
        flash("Tick the box to confirm: the provider may already have sent this email.", "error")
        return redirect(back)
    with db.write_transaction() as s:
        delivery = s.get(Delivery, delivery_id)
        if delivery is None:
            abort(404)
        if delivery.state != "unknown":
            flash(f"Delivery #{delivery_id} is {delivery.state}, not unknown: nothing changed.", "error")
            return redirect(back)
        resolve_unknown(s, delivery, action, current_user._get_current_object())
    flash(
        f"Delivery #{delivery_id} marked as sent." if action == "sent" else f"Delivery #{delivery_id} queued again.",
        "success",
    )
    return redirect(back)
