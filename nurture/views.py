"""The double opt-in link: /confirm/<token> confirms in one click, and the emails that carry it."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, render_template
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from core import signals
from core.clock import now
from core.db import db
from leads.consent import CURRENT_EMAIL_CONSENT, EMAIL_MARKETING
from leads.models import Consent, Lead
from mailer.base import Message
from nurture.definitions import registry
from nurture.enrollment import activate
from nurture.models import Delivery, Enrollment

log = logging.getLogger(__name__)

bp = Blueprint("nurture", __name__)

SALT = "confirm"
# Long enough for the reminder (two days later) and a slow reader; short enough that old mail goes stale.
CONFIRM_MAX_AGE = 14 * 24 * 3600


class _ClockSigner(TimestampSigner):
    """Token ages follow the app's clock, so tests (and demos) can move time."""

    def get_timestamp(self) -> int:
        return int(now().timestamp())


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT, signer=_ClockSigner)


def make_confirm_token(enrollment_id: int) -> str:
    """A signed, timestamped token naming one enrollment."""
    return _serializer().dumps({"enrollment": int(enrollment_id)})


def read_confirm_token(token: str) -> int | None:
    """The enrollment id in a valid, unexpired token, else None."""
    if not token or len(token) > 300:
        return None
    try:
        data = _serializer().loads(token, max_age=CONFIRM_MAX_AGE)
    except (SignatureExpired, BadSignature):
        return None
    value = data.get("enrollment") if isinstance(data, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return None
    return value


def confirm_url(enrollment_id: int) -> str:
    """The absolute confirmation link for an enrollment."""
    return f"{current_app.config['SITE_URL']}/confirm/{make_confirm_token(enrollment_id)}"


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
        reminder = session.query(Delivery).filter_by(dedupe_key=f"reminder:{enrollment.id}").first()
        if reminder is not None and reminder.state in ("pending", "retrying"):
            reminder.state, reminder.error, reminder.due_at = "skipped", "confirmed before the reminder", None
        session.flush()
        signals.lead_confirmed.send(
            current_app._get_current_object(), session=session, lead=lead, enrollment=enrollment
        )
        log.info("enrollment %s confirmed", enrollment.id)
    return render_template("nurture/confirmed.html", state="new", campaign=campaign), 200


CONFIRM_TEXT = """Hi {first_name},

Thank you for your interest in {campaign}. Please confirm that you would like to receive our emails:

[Yes, send me the emails]({url})

If you did not ask for this, ignore this message and you will hear nothing more from us.
"""

REMINDER_TEXT = """Hi {first_name},

A couple of days ago you asked about {campaign} at {clinic}. We have not sent you anything yet,
because you have not confirmed your email address. If you would still like to hear from us:

[Yes, send me the emails]({url})

This is the only reminder we will send.
"""


def _compose(delivery: Delivery, subject: str, preheader: str, text: str, reason: str) -> Message:
    from mailer.compose import build_message

    lead = db.session.get(Lead, delivery.lead_id)
    if lead is None or not lead.email:
        raise LookupError(f"delivery {delivery.id}: the lead has no address")
    campaign = registry().get(delivery.campaign_slug or "")
    name = campaign.name if campaign is not None else "our treatments"
    first_name = lead.first_name or "there"
    markdown = text.format(
        first_name="{{ first_name }}",
        campaign=name,
        clinic=current_app.config["CLINIC_NAME"],
        url=confirm_url(delivery.enrollment_id),
    )
    return build_message(
        to=lead.email,
        subject=subject,
        preheader=preheader,
        markdown=markdown,
        context={"first_name": first_name},
        lead=lead,
        campaign_slug=delivery.campaign_slug,
        reason=reason,
        delivery_id=delivery.id,
        list_unsubscribe=False,
        categories=(delivery.kind,),
        custom_args={"kind": delivery.kind},
    )


def compose_confirmation(delivery: Delivery) -> Message:
    """The double opt-in email with its signed link."""
    return _compose(
        delivery,
        "Please confirm your email address",
        "One click and we will start sending what you asked for.",
        CONFIRM_TEXT,
        "You get this email because you asked for information on our website.",
    )


def compose_reminder(delivery: Delivery) -> Message:
    """The one reminder an unconfirmed lead gets."""
    return _compose(
        delivery,
        "Still interested? Confirm your email address",
        "We will only send this reminder once.",
        REMINDER_TEXT,
        "You get this email because you asked for information on our website and have not confirmed yet.",
    )
