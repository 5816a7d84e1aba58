"""The nurture composers fill exactly the names validation allows, with the lead's and the clinic's values."""

from __future__ import annotations

from types import SimpleNamespace

from core.templating import SAMPLE_CONTEXT, TEMPLATE_VARIABLES
from nurture.composers import email_context
from studio.registry import registry


def test_a_real_lead_gets_exactly_the_variables_campaign_files_are_checked_with(app):
    with app.app_context():
        campaign = registry().get("stem-cell-therapy")
        context = email_context(SimpleNamespace(first_name="Ana"), campaign)
    assert tuple(context) == TEMPLATE_VARIABLES == tuple(SAMPLE_CONTEXT)
    assert context["first_name"] == "Ana"
    assert context["booking_url"].endswith("/stem-cell-therapy")
