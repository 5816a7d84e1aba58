"""A lead's place in a sequence, changed by staff: take the lead out, or move it to a step (from the lead page)."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, request, url_for
from flask_login import current_user

from admin.blueprint import bp
from admin.forms import ActionForm
from core.db import db
from core.formatting import local_text
from leads.models import Lead
from nurture.enrollment import move_to_step, remove_from_sequence
from nurture.models import Enrollment
from studio.registry import registry
from studio.services import record_audit


def _enrollment(lead_id: int, enrollment_id: int) -> Enrollment:
    enrollment = db.session.get(Enrollment, enrollment_id)
    if enrollment is None or enrollment.lead_id != lead_id:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    return enrollment


def _back(lead_id: int, slug: str) -> Response:
    return redirect(url_for("admin.lead_detail", lead_id=lead_id, _anchor=f"enrollment-{slug}"))


@bp.post("/leads/<int:lead_id>/enrollments/<int:enrollment_id>/remove")
def enrollment_remove(lead_id: int, enrollment_id: int) -> Response:
    """Take the lead out of this sequence: nothing more of it is sent."""
    enrollment = _enrollment(lead_id, enrollment_id)
    slug = enrollment.campaign_slug
    with db.write_transaction() as session:
        enrollment = session.get(Enrollment, enrollment_id)
        done = remove_from_sequence(session, enrollment)
        if done:
            record_audit(session, current_user.email, "remove-from-sequence", slug, {"lead": lead_id})
    flash("Removed from the sequence: no more of its emails go to this lead." if done else "Not running.", "success")
    return _back(lead_id, slug)


@bp.post("/leads/<int:lead_id>/enrollments/<int:enrollment_id>/move")
def enrollment_move(lead_id: int, enrollment_id: int) -> Response:
    """Make a chosen step this lead's next email (already-sent steps are never sent twice)."""
    enrollment = _enrollment(lead_id, enrollment_id)
    slug = enrollment.campaign_slug
    campaign = registry().get(slug)
    step_id = (request.form.get("step") or "").strip()[:64]
    if campaign is None or campaign.step(step_id) is None:
        flash("Not moved: choose one of the campaign's emails.", "error")
        return _back(lead_id, slug)
    with db.write_transaction() as session:
        enrollment = session.get(Enrollment, enrollment_id)
        lead = session.get(Lead, lead_id)
        try:
            due = move_to_step(session, enrollment, campaign, step_id, lead)
        except ValueError as exc:
            session.rollback()
            flash(f"Not moved: {exc}.", "error")
            return _back(lead_id, slug)
        record_audit(session, current_user.email, "move-in-sequence", slug, {"lead": lead_id, "step": step_id})
    flash(f"Moved: “{campaign.step(step_id).subject}” is next, on {local_text(due)}.", "success")
    return _back(lead_id, slug)
