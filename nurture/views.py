"""The double opt-in link: /confirm/<token> confirms in one click (the emails that carry it: nurture.composers)."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, render_template

from core import signals
from core.clock import now
from core.db import db
from leads.consent import CURRENT_EMAIL_CONSENT, EMAIL_MARKETING
from leads.models import Consent, Lead
from mailer.models import Delivery
from nurture.enrollment import activate, wake_if_due
from nurture.models import Enrollment
from nurture.tokens import read_confirm_token
from studio.registry import registry

log = logging.getLogger(__name__)

bp = Blueprint("nurture", __name__)


def _invalid() -> tuple[str, int]:
    return render_template("nurture/confirm_invalid.html"), 400


@bp.get("/confirm/<token>")
def confirm(token: str) -> tuple[str, int]:
    """Confirm a double opt-in: record the consent and start the sequence; a second click changes nothing."""
    enrollment_id = read_confirm_token(token)
    if enrollment_id is None:
        return _invalid()
    with db.write_transaction() as session:
        enrollment = session.get(Enrollment, enrollment_id)
        lead = session.get(Lead, enrollment.lead_id) if enrollment is not None else None
        if enrollment is None or lead is None or lead.erased_at is not None:
            return _invalid()
        campaign = registry().get(enrollment.campaign_slug)
        if enrollment.state != "pending" or lead.unsubscribed_at is not None or campaign is None:
            state = "confirmed" if enrollment.state in ("active", "completed") else "ended"
            return render_template("nurture/confirmed.html", state=state, campaign=campaign), 200
        moment = now()
        session.add(
            Consent(
                lead_id=lead.id,
                purpose=EMAIL_MARKETING,
                version=CURRENT_EMAIL_CONSENT,
                granted=True,
                source="confirm",
                created_at=moment,
            )
        )
        lead.email_opt_in = True
        enrollment.confirmed_at = moment
        activate(enrollment, campaign, lead, moment)
        wake_if_due(session, enrollment, moment)
        reminder = session.query(Delivery).filter_by(dedupe_key=f"reminder:{enrollment.id}").first()
        if reminder is not None and reminder.state in ("pending", "retrying"):
            reminder.state, reminder.error, reminder.due_at = "skipped", "confirmed before the reminder", None
        session.flush()
        signals.lead_confirmed.send(
            current_app._get_current_object(), session=session, lead=lead, enrollment=enrollment
        )
        log.info("enrollment %s confirmed", enrollment.id)
    return render_template("nurture/confirmed.html", state="new", campaign=campaign), 200
