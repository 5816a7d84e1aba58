"""The admin's own email: a test send of a campaign step, rendered for the sample lead, to a staff member."""

from __future__ import annotations

from core.templating import SAMPLE_CONTEXT
from leads.models import Lead
from mailer.base import ComposeError, Message
from mailer.models import Delivery
from nurture.composers import compose_step
from studio.registry import registry


def sample_lead() -> Lead:
    """A made-up lead for previews and test sends; never added to the session."""
    first_name = SAMPLE_CONTEXT["first_name"]
    return Lead(id=0, first_name=first_name, last_name="Sample", email="alex.sample@example.com", status="new")


def compose_test_delivery(delivery: Delivery) -> Message:
    """Composer for kind 'test': the step rendered for the sample lead, sent to the staff member's address."""
    campaign = registry().get(delivery.campaign_slug or "")
    step = campaign.step(delivery.step_id or "") if campaign else None
    if campaign is None or step is None:
        raise ComposeError(f"test delivery #{delivery.id}: no step {delivery.campaign_slug}/{delivery.step_id}")
    message = compose_step(campaign, step, sample_lead(), delivery)
    name = (delivery.variant or "").rpartition(":")[2]
    message.subject = f"[Test {name.upper()}] {message.subject}" if name else f"[Test] {message.subject}"
    return message
