"""The emails of the nurture package: a campaign step, the double opt-in confirmation and its one reminder.

Each is registered for its kind of delivery (see init_app); the texts of the confirmation and the reminder are
template files (templates/nurture/email/<name>.md, front matter = subject and preheader), like the alerts'.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import current_app

from core.db import db
from core.formatting import phone_text
from core.text import strip_bidi
from leads.models import Lead
from mailer.base import ComposeError, Message, PermanentError
from mailer.compose import assemble, build_message, build_template_email, check_recipient
from mailer.models import Delivery
from mailer.step_templates import NAME_VARIABLE, fillable_name, step_template
from mailer.suppression import SuppressedError, is_suppressed
from mailer.tokens import unsubscribe_url
from nurture.tokens import confirm_url
from studio.definitions import Campaign, Step, shown_path
from studio.registry import registry

# A step's file is named in every error and message size check: resolved once per path, not per email.
_shown_path = lru_cache(maxsize=512)(shown_path)


def email_context(lead: Any = None, campaign: Any = None) -> dict[str, Any]:
    """The variables a campaign email may use (core.templating.TEMPLATE_VARIABLES): names and clinic facts only."""
    config = current_app.config
    # Names are cleaned at capture; rows stored before that may still hold bidirectional overrides.
    first_name = strip_bidi(getattr(lead, "first_name", None) or "").strip() if lead is not None else ""
    landing = f"{config['SITE_URL']}/{campaign.slug}" if campaign is not None else config["SITE_URL"]
    return {
        "first_name": first_name or "there",
        "clinic_name": config["CLINIC_NAME"],
        "clinic_phone": phone_text(config.get("CLINIC_PHONE")),
        "site_url": config["SITE_URL"],
        "campaign_name": getattr(campaign, "name", "") if campaign is not None else "",
        "booking_url": landing,
    }


def step_where(campaign: Campaign | None, step: Step) -> str:
    """How an error names a campaign step: its email file (as `flask campaigns validate` does) and its id."""
    path = getattr(step, "body_path", None)
    return f"{_shown_path(path) if path is not None else getattr(campaign, 'slug', '?')}: step {step.id}"


def content_problem(delivery: Any, exc: Exception, campaign: Campaign | None = None, step: Step | None = None) -> str:
    """Why an email could not be built, for a marketer: the file (or kind of email), the step, what is wrong."""
    if step is not None:
        where = step_where(campaign, step)
    elif getattr(delivery, "step_id", None):
        found = registry().get(delivery.campaign_slug or "")
        step = found.step(delivery.step_id) if found is not None else None
        where = step_where(found, step) if step is not None else f"{delivery.campaign_slug}: step {delivery.step_id}"
    else:
        kind = getattr(delivery, "kind", "nurture").replace("_", " ")
        where = f"the {kind} email" + (f" of {delivery.campaign_slug}" if delivery.campaign_slug else "")
    if isinstance(exc, PermanentError):  # ComposeError and the like: their text is written for people
        problem = str(exc)
    else:
        # Only the type: the text of an unexpected error may quote the lead's data.
        problem = f"the email could not be built ({type(exc).__name__}); open the step's preview in the admin"
    problem = problem.removeprefix(f"{where}: ")
    return f"{where}: {problem}"


def marketing_reason() -> str:
    """Why a nurture reader gets the email, for the footer."""
    name = current_app.config["CLINIC_NAME"]
    return f"You are receiving this because you asked {name} about a consultation and agreed to hear from us by email."


def compose_step(campaign: Campaign, step: Step, lead: Any, delivery: Any) -> Message:
    """The email for one campaign step to one lead, recorded as `delivery`."""
    to = getattr(delivery, "recipient", None) or lead.email
    if not to:
        raise ComposeError(f"lead #{lead.id} has no email address (erased?)")
    step = step.as_variant(getattr(delivery, "variant", None))
    context = email_context(lead, campaign)
    reason = marketing_reason()
    where = step_where(campaign, step)
    # What Markdown-escaping and the subject's whitespace clean-up make of any name.
    first_name = " ".join(str(context[NAME_VARIABLE]).split())
    template = None
    if fillable_name(first_name):
        # Same refusals, in the same order, as build_message.
        check_recipient(to, lead, list_unsubscribe=True)
        template = step_template(campaign, step, context, reason, where)
    if template is None:
        return build_message(
            to=to,
            subject=step.subject,
            preheader=step.preheader,
            markdown=step.markdown,
            context=context,
            lead=lead,
            campaign_slug=campaign.slug,
            step_id=step.id,
            delivery_id=delivery.id,
            reason=reason,
            list_unsubscribe=True,
        )
    return assemble(
        to=to,
        rendered=template.fill(first_name, unsubscribe_url(lead.id)),
        campaign_slug=campaign.slug,
        step_id=step.id,
        delivery_id=delivery.id,
        categories=(),
        custom_args=None,
        where=where,
    )


def compose_nurture_delivery(delivery: Delivery) -> Message:
    """Composer for kind 'nurture': reload the campaign, step and lead of a recorded delivery (retries use it)."""
    campaign = registry().get(delivery.campaign_slug or "")
    if campaign is None:
        raise ComposeError(f"campaign {delivery.campaign_slug!r} no longer exists")
    step = campaign.step(delivery.step_id or "")
    if step is None:
        raise ComposeError(f"campaign {campaign.slug!r} has no step {delivery.step_id!r}")
    lead = db.session.get(Lead, delivery.lead_id) if delivery.lead_id is not None else None
    if lead is None:
        raise ComposeError(f"delivery #{delivery.id} has no lead")
    to = delivery.recipient or lead.email
    if to and is_suppressed(db.session, to):
        raise SuppressedError("the address is on the suppression list")
    return compose_step(campaign, step, lead, delivery)


def _opt_in_email(delivery: Delivery, name: str, reason: str) -> Message:
    """The confirmation or the reminder of an enrollment waiting for its double opt-in."""
    lead = db.session.get(Lead, delivery.lead_id)
    if lead is None or not lead.email:
        raise LookupError(f"delivery {delivery.id}: the lead has no address")
    campaign = registry().get(delivery.campaign_slug or "")
    context = {
        "first_name": lead.first_name or "there",
        "campaign_name": campaign.name if campaign is not None else "our treatments",
        "clinic_name": current_app.config["CLINIC_NAME"],
        "confirm_url": confirm_url(delivery.enrollment_id),
    }
    return build_template_email(
        f"nurture/email/{name}.md",
        to=lead.email,
        context=context,
        delivery=delivery,
        reason=reason,
        lead=lead,
        campaign_slug=delivery.campaign_slug,
    )


def compose_confirmation(delivery: Delivery) -> Message:
    """The double opt-in email with its signed link."""
    return _opt_in_email(
        delivery, "confirmation", "You get this email because you asked for information on our website."
    )


def compose_reminder(delivery: Delivery) -> Message:
    """The one reminder an unconfirmed lead gets."""
    return _opt_in_email(
        delivery,
        "reminder",
        "You get this email because you asked for information on our website and have not confirmed yet.",
    )
