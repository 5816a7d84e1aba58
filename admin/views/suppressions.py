"""The suppression list: who must never be emailed and why; an admin lifts one with a reason, never a spam report."""

from __future__ import annotations

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from admin.blueprint import admin_required, bp
from admin.forms import ActionForm
from core.db import db
from leads.models import Lead
from mailer.models import Suppression
from mailer.suppression import NEVER_LIFTED, LiftRefused, lift

PER_PAGE = 50
# Why an address is on the list, as the screen says it.
REASONS = {
    "unsubscribe": "Unsubscribed",
    "group_unsubscribe": "Unsubscribed (provider's group)",
    "manual": "Unsubscribed by staff",
    "bounce": "Bounced",
    "dropped": "Dropped by the provider",
    "spamreport": "Reported as spam",
}


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@bp.get("/suppressions")
def suppressions() -> str:
    """Addresses no marketing email goes to, newest first; ?q= finds an address."""
    q = (request.args.get("q") or "").strip().lower()[:320]
    try:
        page = max(1, min(int(request.args.get("page") or 1), 1_000_000))
    except ValueError:
        page = 1
    stmt = select(Suppression)
    if q:
        stmt = stmt.where(Suppression.email.like(_like(q), escape="\\"))
    total = db.session.scalar(stmt.with_only_columns(func.count())) or 0
    rows = list(db.session.scalars(stmt.order_by(Suppression.id.desc()).limit(PER_PAGE).offset((page - 1) * PER_PAGE)))
    emails = [row.email for row in rows if row.email]
    leads = {lead.email: lead for lead in db.session.scalars(select(Lead).where(Lead.email.in_(emails or [""])))}
    return render_template(
        "admin/suppressions.html",
        rows=rows,
        leads=leads,
        q=q,
        total=total,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        reasons=REASONS,
        never=NEVER_LIFTED,
        form=ActionForm(),
    )


@bp.post("/suppressions/<int:suppression_id>/lift")
@admin_required
def suppression_lift(suppression_id: int) -> Response:
    """Lift one suppression with the reason typed; recorded in the lead's consent ledger (who and why)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    back = url_for("admin.suppressions", q=request.form.get("q") or None)
    with db.write_transaction() as s:
        row = s.get(Suppression, suppression_id)
        if row is None:
            abort(404)
        try:
            lead = lift(s, row, request.form.get("reason", ""), current_user.email)
        except LiftRefused as refused:
            flash(f"Not lifted: {refused}.", "error")
            return redirect(back)
        lead_id = lead.id if lead is not None else None
    current_app.logger.info("suppression %s lifted by user=%s", suppression_id, current_user.id)
    where = " and recorded on the lead's timeline" if lead_id else ""
    flash(f"Suppression lifted{where}. The address can receive email again; no sequence restarts.", "success")
    return redirect(url_for("admin.lead_detail", lead_id=lead_id) if lead_id else back)
