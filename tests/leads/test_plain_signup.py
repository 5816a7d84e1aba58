"""The plain reading of a signup (leads.forms.plain_signup) accepts only what SignupForm accepts, with the same
answers; anything else goes through the form, which shows each problem beside its field."""

from __future__ import annotations

import pytest
from flask import Flask, request
from hypothesis import event, given
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from core.db import db
from leads.forms import SignupForm, plain_signup
from leads.models import INTERESTS, Lead, Submission
from tests.fuzz.strategies import FUZZ, value
from tests.support.forms import SLUG, VALID, signup_data, signup_form

INTEREST_CHOICES = tuple(INTERESTS.items())
FIELDS = (*VALID, "last_name", "tz", "utm_source", "utm_campaign", "referrer", "landing_variant", "website", "started")
# Values at and around each rule's edge, so both readings are compared where they could part.
EDGES = st.sampled_from(
    [
        "",
        "   ",
        "a" * 100,
        "a" * 101,
        " Dana ",
        "Dana\u202e",
        "Zoë",
        "ada@example.com",
        "ADA@EXAMPLE.COM ",
        "ada@exämple.com",
        "adä@example.com",
        "a@b",
        "x" * 310 + "@example.com",
        "(303) 555-0123",
        "+44 20 7946 0958",
        "555",
        "1" * 41,
        "email",
        "phone",
        "text",
        "knee",
        "hair",
        "Knee",
        "y",
        "false",
        "0",
        "America/Denver",
        "Not/AZone",
        "m" * 2000,
        "m" * 2001,
        "line one\r\nline two",
    ]
)


def other_answer(name: str) -> st.SearchStrategy:
    """Omitted, the valid answer, an edge, anything, or the field repeated."""
    single = st.one_of(st.just(VALID.get(name, "")), EDGES, value)
    return st.one_of(single, st.none(), st.lists(single, min_size=2, max_size=3))


@st.composite
def posts(draw: st.DrawFn) -> dict:
    """A valid post with up to three fields changed: most examples sit near the line between the two readings."""
    post: dict = {**VALID, "tz": "America/Denver", "utm_source": "newsletter"}
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        post[name] = draw(other_answer(name))
    return post


def _form(post: dict) -> MultiDict:
    pairs: list[tuple[str, str]] = []
    for name, given_value in post.items():
        if isinstance(given_value, list):
            pairs.extend((name, v) for v in given_value)
        elif given_value is not None:
            pairs.append((name, given_value))
    return MultiDict(pairs)


@pytest.fixture
def plain_app(app: Flask) -> Flask:
    app.config["WTF_CSRF_ENABLED"] = False
    return app


@FUZZ
@given(post=posts())
def test_a_post_read_plainly_is_one_the_form_accepts_with_the_same_answers(plain_app: Flask, post: dict) -> None:
    with plain_app.test_request_context(f"/{SLUG}", method="POST", data=_form(post)):
        plain = plain_signup(request.form, INTEREST_CHOICES)
        form = SignupForm(formdata=request.form).offer(INTEREST_CHOICES)
        accepted = form.validate()
        event("read plainly" if plain is not None else "left to the form")
        if plain is None:
            return
        assert accepted, form.errors
        assert plain.data == form.signup_data()
        assert plain.tracking == form.tracking()
        assert plain.landing_variant == form.landing_variant.data
        assert plain.honeypot == (form.website.data or "")
        assert plain.started == form.started.data


@pytest.mark.parametrize(
    "answers",
    [
        {},
        {"phone": "", "preferred_contact": "email", "last_name": None, "message": None},
        {"phone": "+44 20 7946 0958", "preferred_contact": "text"},
        {"first_name": "Zoë", "email_consent": None},
    ],
    ids=["everything", "only-what-is-required", "texts-abroad", "accented-no-consent"],
)
def test_everyday_posts_are_read_plainly(plain_app: Flask, answers: dict) -> None:
    post = {**VALID, **answers}
    with plain_app.test_request_context(f"/{SLUG}", method="POST", data=_form(post)):
        assert plain_signup(request.form, INTEREST_CHOICES) is not None


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({"first_name": " "}, "first_name"),
        ({"email": "a@b"}, "email"),
        ({"phone": "555"}, "phone"),
        ({"phone": "", "preferred_contact": "phone"}, "preferred_contact"),
        ({"interest": "hair"}, "interest"),
        ({"privacy_ack": None}, "privacy_ack"),
    ],
)
def test_a_mistake_goes_through_the_form_and_is_shown_beside_its_field(client, answers: dict, field: str) -> None:
    form = signup_form(client)
    response = client.post(f"/{SLUG}", data=signup_data(form, **answers))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert f'id="{field}-error"' in html or f'aria-describedby="{field}-error"' in html, html[-2000:]


def test_a_plain_post_stores_the_lead_as_the_form_would(app: Flask, client) -> None:
    form = signup_form(client, query="?utm_source=newsletter&utm_campaign=spring")
    response = client.post(f"/{SLUG}", data=signup_data(form, phone="+44 20 7946 0958", preferred_contact="text"))
    assert response.status_code == 303
    with app.app_context():
        lead = db.session.scalars(select(Lead)).one()
        submission = db.session.scalars(select(Submission)).one()
        answers = (lead.email, lead.phone, lead.preferred_contact)
        assert answers == ("dana.whitfield@example.com", "+442079460958", "text")
        assert (submission.utm_source, submission.utm_campaign) == ("newsletter", "spring")


def test_without_a_checked_token_nothing_is_read_plainly_or_stored(app: Flask, client) -> None:
    form = signup_form(client)
    data = signup_data(form)
    data["csrf_token"] = "forged"
    response = client.post(f"/{SLUG}", data=data)
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalars(select(Lead)).first() is None
