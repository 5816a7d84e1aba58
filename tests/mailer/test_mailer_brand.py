"""Nurture emails as a reader sees them: a booking button Outlook draws too, landing on the form with UTM tags;
the disclaimer once; the logo and colour from the settings."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from leads.models import Lead
from mailer.compose import build_message
from mailer.models import Delivery
from nurture.composers import compose_step, email_context
from studio.registry import registry

SLUG = "stem-cell-therapy"
DISCLAIMER = "not medical advice"


def _compose(app, step_id: str, **config: object):
    app.config.update(config)
    with app.app_context():
        campaign = registry().get(SLUG)
        lead = Lead(id=7, first_name="Ann", email="ann@example.com")
        return compose_step(campaign, campaign.step(step_id), lead, Delivery(id=3, kind="nurture", dedupe_key="t"))


def test_the_booking_link_is_a_table_button_to_the_form_with_utm_tags(app):
    message = _compose(app, "book")
    [button] = re.findall(r'<table class="button".*?</table>', message.html, re.S)
    assert 'bgcolor="#0b5d57"' in button  # Outlook paints the cell even where it ignores CSS
    assert "border-left: 28px solid #0b5d57" in button  # and sizes the link by its borders
    [href] = re.findall(r'<a href="([^"]+)"', button)
    url = urlsplit(href.replace("&amp;", "&"))
    assert (url.netloc, url.path, url.fragment) == (urlsplit(app.config["SITE_URL"]).netloc, f"/{SLUG}", "signup")
    assert parse_qs(url.query) == {
        "utm_source": ["nurture"],
        "utm_medium": ["email"],
        "utm_campaign": [SLUG],
        "utm_content": ["5"],  # the fifth email, as the admin numbers steps
    }
    assert ">Book your free consultation</a>" in button
    assert f"Book your free consultation ({href.replace('&amp;', '&')})" in message.text


def test_the_form_anchor_exists_on_the_landing_page(client):
    assert 'id="signup"' in client.get(f"/{SLUG}").get_data(as_text=True)


@pytest.mark.parametrize("step_id", ["welcome", "the-science", "compared", "knee", "book"])
def test_the_disclaimer_appears_once(app, step_id):
    message = _compose(app, step_id)
    assert message.html.count(DISCLAIMER) == 1
    assert message.text.count(DISCLAIMER) == 1


def test_logo_and_colour_are_settings(app):
    message = _compose(app, "book", BRAND_COLOR="#ffd23f", BRAND_LOGO_URL="https://cdn.example.org/logo.png")
    assert re.search(
        r'<img class="logo" src="https://cdn.example.org/logo.png" alt="NexGenEsis Healthcare"', message.html
    )
    [button] = re.findall(r'<table class="button".*?</table>', message.html, re.S)
    assert 'bgcolor="#ffd23f"' in button
    assert "color: #1f2933" in button  # dark text: white on yellow would not be readable


def test_a_link_inside_a_sentence_stays_a_link(app):
    with app.app_context():
        context = email_context(Lead(id=1, first_name="Ann"), registry().get(SLUG))
        message = build_message(
            to="ann@example.com",
            subject="Hi",
            preheader="",
            markdown="You can [book here]({{ booking_url }}) any time.",
            context=context,
            lead=Lead(id=1, first_name="Ann"),
            campaign_slug=SLUG,
            step_id="welcome",
            reason="test",
        )
    assert 'class="button"' not in message.html
    assert re.search(r'<a href="[^"]+utm_content=1#signup"[^>]*>book here</a>', message.html)
