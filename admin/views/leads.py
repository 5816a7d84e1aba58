"""Leads: the table with search, filters and CSV export; a lead's page with its timeline and actions."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from flask import Response, abort, current_app, flash, redirect, render_template, request, stream_with_context, url_for
from flask_login import current_user
from sqlalchemy import select

from admin import export
from admin.blueprint import admin_required, bp
from admin.forms import STATUS_LABELS, ActionForm, EraseForm, NoteForm, StatusForm
from admin.models import User
from admin.queries import SORTS, LeadFilter, filter_choices, interest_choices, iter_filtered, lead_page
from admin.services import SEQUENCE_RULE, gdpr_json, mark_contacted, timeline
from core.clock import now
from core.db import db
from leads.consent import EMAIL_MARKETING
from leads.models import CONTACT_METHODS, STATUSES, Consent, Lead, Submission
from leads.services import accept_details, add_note, change_status, erase_lead, pending_details
from mailer.models import Delivery, Suppression, email_hash
from mailer.suppression import suppress
from nurture.models import Enrollment
from nurture.progress import current_progress, progress
from studio.registry import registry

DETAIL_LABELS = {
    "first_name": "First name",
    "last_name": "Last name",
    "phone": "Phone",
    "preferred_contact": "Contact preference",
    "interest": "Interest",
}


def _tz() -> str:
    return current_app.config["CLINIC_TIMEZONE"]


def _get_lead(lead_id: int) -> Lead:
    lead = db.session.get(Lead, lead_id)
    if lead is None:
        abort(404)
    return lead


@bp.get("/leads")
def leads() -> str | tuple[str, int]:
    """The leads table: new leads nobody has contacted come first, longest waiting at the top."""
    f = LeadFilter.from_args(request.args)
    page = lead_page(db.session, f, _tz())
    html = render_template(
        "admin/leads.html",
        f=f,
        page=page,
        statuses=STATUSES,
        status_labels=STATUS_LABELS,
        interests=interest_choices(),
        sorts=SORTS,
        choices=filter_choices(db.session),
        positions=current_progress(db.session, [lead.id for lead in page.leads]),
        moment=now(),
    )
    # The page still lists leads (without the bad values), but the request itself was wrong.
    return (html, 400) if f.errors else html


@bp.get("/leads/export.csv")
def leads_csv() -> Response:
    """The filtered leads as CSV: the table's filter, the columns of `flask leads export` (leads.export)."""
    f = LeadFilter.from_args(request.args)
    if f.errors:
        # An export without the filter the user asked for would look right and be wrong.
        return Response("\n".join(f.errors) + "\n", status=400, mimetype="text/plain")
    tz = _tz()
    current_app.logger.info("leads CSV export by user=%s", current_user.id)

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(export.COLUMNS)
        for row in export.export_rows(db.session, iter_filtered(db.session, f, tz)):
            writer.writerow(row)
            if buffer.tell() > 64_000:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    stamp = now().strftime("%Y%m%d-%H%M")
    return Response(
        stream_with_context(rows()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="leads-{stamp}.csv"'},
    )


@bp.get("/leads/<int:lead_id>")
def lead_detail(lead_id: int) -> str:
    """A lead's details, timeline and actions; details a repeat request gave differently wait to be accepted."""
    lead = _get_lead(lead_id)
    enrollments = list(db.session.scalars(select(Enrollment).where(Enrollment.lead_id == lead.id)))
    failed: dict[int, list[Delivery]] = {}
    failed_rows = select(Delivery).where(
        Delivery.lead_id == lead.id, Delivery.kind == "nurture", Delivery.state == "failed"
    )
    for delivery in db.session.scalars(failed_rows.order_by(Delivery.id)):
        failed.setdefault(delivery.enrollment_id or 0, []).append(delivery)
    contacted_by = db.session.get(User, lead.contacted_by_id) if lead.contacted_by_id else None
    status_form = StatusForm(status=lead.status)
    suppression, consent = _email_standing(lead)
    # What the lead typed is a health detail: shown here, behind the login, and nowhere else.
    messages = [sub for sub in reversed(lead.submissions) if sub.message]
    return render_template(
        "admin/lead.html",
        lead=lead,
        enrollments=enrollments,
        campaign_of=registry().get,
        failed=failed,
        sequence_rule=SEQUENCE_RULE,
        contacted_by=contacted_by,
        entries=timeline(db.session, lead),
        status_form=status_form,
        note_form=NoteForm(),
        action_form=ActionForm(),
        status_labels=STATUS_LABELS,
        interests=interest_choices(),
        contact_methods=CONTACT_METHODS,
        detail_labels=DETAIL_LABELS,
        pending=pending_details(db.session, lead),
        progress_of={e.id: progress(e) for e in enrollments},
        messages=messages,
        suppression=suppression,
        email_status=export.email_status(lead, suppression, consent),
        moment=now(),
    )


def _email_standing(lead: Lead) -> tuple[Suppression | None, Consent | None]:
    """The lead's suppression (if any) and latest email-marketing consent row."""
    suppression = None
    if lead.email:
        suppression = db.session.scalar(select(Suppression).where(Suppression.email_hash == email_hash(lead.email)))
    consent = db.session.scalar(
        select(Consent)
        .where(Consent.lead_id == lead.id, Consent.purpose == EMAIL_MARKETING)
        .order_by(Consent.id.desc())
        .limit(1)
    )
    return suppression, consent


@bp.post("/leads/<int:lead_id>/submissions/<int:submission_id>/accept")
def lead_accept_details(lead_id: int, submission_id: int) -> Response:
    """Make the details a later request gave (name, phone, contact preference, interest) the lead's own; recorded."""
    if not ActionForm().validate_on_submit():
        abort(400)
    with db.write_transaction() as s:
        lead = s.get(Lead, lead_id)
        submission = s.get(Submission, submission_id)
        if lead is None or lead.erased_at or submission is None or submission.lead_id != lead.id:
            abort(404)
        changed = accept_details(s, lead, submission, current_user._get_current_object())
    labels = ", ".join(DETAIL_LABELS[name].lower() for name in changed)
    flash(f"Details accepted: {labels}." if changed else "Nothing differed: the details stay as they are.", "success")
    return redirect(url_for("admin.lead_detail", lead_id=lead_id))


@bp.post("/leads/<int:lead_id>/status")
def lead_status(lead_id: int) -> Response:
    """Change the status; booked, patient and not_a_fit end the nurture at once."""
    form = StatusForm()
    if not form.validate_on_submit():
        flash("Choose one of the listed statuses.", "error")
        return redirect(url_for("admin.lead_detail", lead_id=lead_id))
    with db.write_transaction() as s:
        lead = s.get(Lead, lead_id)
        if lead is None or lead.erased_at:
            abort(404)
        changed = change_status(s, lead, form.status.data, source="admin", user=current_user._get_current_object())
    label = STATUS_LABELS[form.status.data]
    flash(f"Status set to {label}." if changed else f"The lead already was {label}.", "success" if changed else "info")
    return redirect(url_for("admin.lead_detail", lead_id=lead_id))


@bp.post("/leads/<int:lead_id>/contacted")
def lead_contacted(lead_id: int) -> Response:
    """Record that you contacted the lead (who and when)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    with db.write_transaction() as s:
        lead = s.get(Lead, lead_id)
        if lead is None or lead.erased_at:
            abort(404)
        mark_contacted(s, lead, current_user._get_current_object())
    flash("Marked as contacted.", "success")
    if request.form.get("back") == "list":
        return redirect(url_for("admin.leads"))
    return redirect(url_for("admin.lead_detail", lead_id=lead_id))


@bp.post("/leads/<int:lead_id>/notes")
def lead_note(lead_id: int) -> Response:
    """Add a note."""
    form = NoteForm()
    if not form.validate_on_submit():
        flash("A note needs some text (at most 5,000 characters).", "error")
        return redirect(url_for("admin.lead_detail", lead_id=lead_id))
    with db.write_transaction() as s:
        lead = s.get(Lead, lead_id)
        if lead is None or lead.erased_at:
            abort(404)
        add_note(s, lead, form.body.data or "", current_user._get_current_object())
    flash("Note added.", "success")
    return redirect(url_for("admin.lead_detail", lead_id=lead_id))


@bp.post("/leads/<int:lead_id>/unsubscribe")
def lead_unsubscribe(lead_id: int) -> Response:
    """Stop all marketing email to the lead (suppression list; the nurture ends)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    with db.write_transaction() as s:
        lead = s.get(Lead, lead_id)
        if lead is None or lead.erased_at or not lead.email:
            abort(404)
        suppress(s, lead.email, "manual", "admin")
    flash("Unsubscribed: no more marketing email goes to this lead.", "success")
    return redirect(url_for("admin.lead_detail", lead_id=lead_id))


@bp.get("/leads/<int:lead_id>/export.json")
def lead_export(lead_id: int) -> Response:
    """Everything stored about the lead, as JSON (a GDPR access request)."""
    lead = _get_lead(lead_id)
    current_app.logger.info("GDPR export of lead %s by user=%s", lead.id, current_user.id)
    return Response(
        gdpr_json(db.session, lead),
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="lead-{lead.id}.json"'},
    )


@bp.route("/leads/<int:lead_id>/erase", methods=["GET", "POST"])
@admin_required
def lead_erase(lead_id: int) -> Response | str | tuple[str, int]:
    """Erase the lead's personal data everywhere (admins only; asks for confirmation)."""
    lead = _get_lead(lead_id)
    form = EraseForm()
    if request.method == "POST":
        if form.validate_on_submit() and (form.confirm.data or "").strip() == "ERASE":
            with db.write_transaction() as s:
                target = s.get(Lead, lead_id)
                erase_lead(s, target)
            current_app.logger.info("lead %s erased by user=%s", lead_id, current_user.id)
            flash(f"Lead #{lead_id} erased. Only anonymous counts remain.", "success")
            return redirect(url_for("admin.leads"))
        form.confirm.errors = ["Type ERASE in capitals to confirm."]
        return render_template("admin/erase.html", lead=lead, form=form), 400
    return render_template("admin/erase.html", lead=lead, form=form)
