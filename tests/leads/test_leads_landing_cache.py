"""The landing page is rendered once per campaign and filled per visit: same bytes, fresh values for everyone."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape
from sqlalchemy import select

from core.db import db
from leads.models import Lead
from tests.support.forms import SLUG, VALID, hidden_fields

TRICKY = {
    "utm_source": '"><script>alert(1)</script>',
    "utm_medium": "&amp; & ' \u2028",
    "utm_campaign": "caf\u00e9 \U0001f600",
    "utm_term": "slot0000end {{ 7*7 }}",
    "utm_content": "x" * 300,
}
REFERRER = 'https://ads.example/?q="<b>&x=1'


def _page(client, query: dict[str, str]) -> str:
    response = client.get(f"/{SLUG}?{urlencode(query)}", headers={"Referer": REFERRER})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _without_token(html: str) -> str:
    # The token is signed with the wall-clock second, so two renders may differ there and only there.
    return re.sub(r'(name="csrf_token" type="hidden" value=")[^"]*"', r'\1"', html)


def test_filled_page_is_byte_identical_to_a_full_render(app, client):
    fast = _page(client, TRICKY)
    app.jinja_env.auto_reload = True  # templates may change on disk: every request renders in full
    slow = _page(client, TRICKY)
    assert _without_token(fast) == _without_token(slow)
    assert "<script>alert(1)" not in fast
    escaped = TRICKY["utm_source"].replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
    assert f'value="{escaped}"' in fast
    hidden = hidden_fields(fast)  # what a browser sends back: the visitor's value, unchanged
    assert hidden["utm_source"] == TRICKY["utm_source"]
    assert hidden["utm_term"] == TRICKY["utm_term"]
    assert len(hidden["utm_content"]) == 100


def test_each_visitor_gets_their_own_token_and_values(app):
    first, second = app.test_client(), app.test_client()
    page_one = _page(first, {"utm_source": "one"})
    page_two = _page(second, {"utm_source": "two"})
    one, two = hidden_fields(page_one), hidden_fields(page_two)
    assert one["utm_source"] == "one"
    assert two["utm_source"] == "two"
    assert one["csrf_token"] != two["csrf_token"]
    # Each token belongs to its own visitor's session: swapped, the post is refused and stores nothing.
    swapped = second.post(f"/{SLUG}", data={**one, **VALID})
    assert swapped.status_code == 400
    assert db.session.scalars(select(Lead)).first() is None
    assert first.post(f"/{SLUG}", data={**one, **VALID}).status_code == 303
    assert db.session.scalars(select(Lead)).one().email == VALID["email"].lower()


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(list("&<>\"'")), max_size=60))
def test_a_filled_value_is_escaped_exactly_as_the_form_widgets_escape_it(text):
    """The fill's escape and markupsafe's (which the widgets use) agree on any text, escaped or left as it is."""
    from core.slots import Slots
    from leads.views import LandingSkeleton

    skeleton = LandingSkeleton(campaign=None, slots=Slots(("<p>caf\u00e9 ", "utm_source", "</p>")))
    assert skeleton.fill({"utm_source": text}) == f"<p>caf\u00e9 {escape(text)}</p>".encode()
