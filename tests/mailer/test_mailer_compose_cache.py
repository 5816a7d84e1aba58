"""Campaign steps are rendered once and filled per lead: every email must equal the one rendered in full."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest

from mailer.compose import build_message
from mailer.step_templates import fillable_name
from nurture.composers import compose_step, email_context, marketing_reason
from studio.registry import registry

NAMES = [
    "Dana",
    "Mary Ann",
    "Jean-Luc",
    "O'Brien",
    "D\u2019Angelo",
    "Zo\u00eb",
    "Jos\u00e9",
    "Jose\u0301",
    "\u674e\u534e",
    "\u0645\u062d\u0645\u062f",
    "  Spaced \t  Out ",
    "",
    # Rendered in full (digits, syntax, control characters), shown here to be equal too.
    "<b>Eve</b> [win](http://evil.example)",
    "Tom & Jerry",
    'Bobby"); DROP',
    "R2-D2",
    "1. Item",
    "===",
    "*bold*",
    "amp",
    "Jr.",
    "Ann\u200bette",
    "Null\x00Byte",
]


def _tags(html: str) -> set[str]:
    """The element names in an HTML document (text and attribute values are not elements)."""
    seen: set[str] = set()
    parser = HTMLParser()
    parser.handle_starttag = lambda tag, attrs: seen.add(tag)
    parser.feed(html)
    return seen


def _lead(first_name: str) -> SimpleNamespace:
    return SimpleNamespace(id=4242, email="lead@example.com", first_name=first_name)


def _full(campaign, step, lead):
    """What build_message renders for this step, with no cache involved."""
    return build_message(
        to=lead.email,
        subject=step.subject,
        preheader=step.preheader,
        markdown=step.markdown,
        context=email_context(lead, campaign),
        lead=lead,
        campaign_slug=campaign.slug,
        step_id=step.id,
        delivery_id=99,
        reason=marketing_reason(),
        list_unsubscribe=True,
    )


def _assert_same(campaign, step, first_name):
    lead = _lead(first_name)
    fast = compose_step(campaign, step, lead, SimpleNamespace(id=99, recipient=None))
    assert fast == _full(campaign, step, lead), (step.id, first_name)
    return fast


@pytest.mark.parametrize("first_name", NAMES)
def test_every_step_of_every_campaign_equals_its_full_render(app, first_name):
    with app.app_context():
        campaigns = registry().all()
        assert campaigns
        for campaign in campaigns:
            for step in campaign.steps:
                _assert_same(campaign, step, first_name)


def test_steps_are_filled_from_the_cache_for_ordinary_names(app):
    assert fillable_name("Jean-Luc")
    assert fillable_name("D\u2019Angelo")
    assert not fillable_name("R2-D2")
    assert not fillable_name("Tom & Jerry")
    assert not fillable_name("Jr.")
    with app.app_context():
        campaign = registry().all()[0]
        step = campaign.steps[0]
        _assert_same(campaign, step, "Dana")
        assert (campaign.slug, step.id) in {key[:2] for key in app.extensions["mailer.step_templates"]}


@pytest.mark.parametrize(
    ("subject", "markdown"),
    [
        ("Hi {{ first_name | upper }}", "Hello {{ first_name }}."),
        ("Hi", "{% if first_name == 'there' %}Hello!{% else %}Hello {{ first_name }}!{% endif %}"),
        ("Hi {{ first_name }}", "*{{ first_name }}*, _{{ first_name }}_ and ~~{{ first_name }}~~"),
        ("Hi", "In code: `{{ first_name }}`"),
        ("Hi", "[{{ first_name }}](https://example.org/) and <https://example.org/{{ first_name }}>"),
        ("Hi", "![{{ first_name }}](https://example.org/a.png)"),
        ("Hi", "&co{{ first_name }}; and &#x{{ first_name }};"),
        ("Hi", "Hello\n{{ first_name }}\n\n# {{ first_name }}\n\n| a |\n|---|\n| {{ first_name }} |"),
    ],
)
def test_templates_that_use_the_name_in_other_ways_still_equal_the_full_render(app, subject, markdown):
    with app.app_context():
        campaign = registry().all()[0]
        step = dataclasses.replace(campaign.steps[0], subject=subject, markdown=markdown)
        for first_name in ("Dana", "Ann-Marie", "py", "A", "there", "<i>x</i>", "===", "1. Item", "*x*", "Tom & Jerry"):
            message = _assert_same(campaign, step, first_name)
            assert "i" not in _tags(message.html)
