"""Hypothesis as a signed-in admin: every admin GET and POST in the URL map, with random paths, queries and forms.

Staff are trusted, but what they type or paste (a NUL from a spreadsheet, a date in year 9999, an id past
BIGINT) must be a 4xx, never a 500, on both databases. Routes are read from the URL map, so a new screen is
fuzzed without editing this file.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from werkzeug.routing import IntegerConverter

from app import create_app
from core.db import db
from tests.fuzz.strategies import FUZZ, SCALE, value
from tests.support.factories import make_user
from tests.support.forms import SLUG, signup_data, signup_form
from tests.support.staff import login

# Signing out or in would only end the session the test needs; both have fuzz tests of their own.
SKIPPED = frozenset({"admin.logout", "admin.login"})
QUERY_NAMES = (
    "q",
    "status",
    "campaign",
    "interest",
    "source",
    "date_from",
    "date_to",
    "sort",
    "page",
    "state",
    "lead",
    "days",
    "next",
)
FORM_NAMES = ("body", "status", "action", "confirm", "back", "state", "lead", "email", "role", "password", "submission")
admin_words = st.sampled_from(
    [
        "9999-12-31",
        "0001-01-01",
        "2026-11-23",
        "99999999999999999999999",
        "9223372036854775808",
        "-1",
        "1",
        "2",
        "stem-cell-therapy",
        "welcome",
        "booked",
        "sent",
        "requeue",
        "ERASE",
        "unknown",
        "failed",
        "knee",
        "list",
        "y",
        "%00",
        "a\x00b",
    ]
)
admin_value = st.one_of(admin_words, value)
path_ids = st.one_of(st.integers(min_value=0, max_value=5), st.sampled_from([2**63, 10**20]), st.integers(min_value=0))
path_texts = st.one_of(st.sampled_from(["stem-cell-therapy", "welcome", "knee", "x.eml"]), st.text(min_size=1))


def _rules(app) -> list:
    return sorted(
        (rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/admin") and rule.endpoint not in SKIPPED),
        key=lambda rule: rule.rule,
    )


@pytest.fixture
def admin_app(app, make_config):
    """The app without rate limits, with two leads (one emailed) and a signed-in admin's client."""
    application = create_app(make_config(RATELIMIT_ENABLED=False))
    make_user(application)
    client = application.test_client()
    for email in ("ada@example.com", "bo@example.com"):
        form = signup_form(client)
        assert client.post(f"/{SLUG}", data=signup_data(form, email=email)).status_code == 303
    assert application.test_cli_runner().invoke(args=["nurture", "tick"]).exit_code == 0
    assert login(client).status_code == 302
    # No app context stays pushed: each request must get its own `g`, or Flask-WTF reuses one CSRF token.
    return application, client


def _token(client) -> str:
    html = client.get("/admin/users").get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the users page"
    return match.group(1)


def _path(rule, data) -> str:
    """The rule with each argument drawn: ids around and far past real rows, slugs, random text."""
    path = rule.rule
    for name, converter in rule._converters.items():
        if isinstance(converter, IntegerConverter):
            part = str(data.draw(path_ids, label=name))
        else:
            part = quote(data.draw(path_texts, label=name), safe="")
        path = re.sub(rf"<(?:[^:>]+:)?{name}>", lambda _m, part=part: part, path)
    return path


def _pairs(data, names: tuple[str, ...]) -> MultiDict:
    keys = st.one_of(st.sampled_from(names), st.text(max_size=12))
    return MultiDict(data.draw(st.lists(st.tuples(keys, admin_value), max_size=5), label="pairs"))


def _still_signed_in(client, response) -> None:
    """A fuzzed POST may end the session (a password change); sign in again so later examples reach the screens."""
    if response.status_code in (302, 303) and "/admin/login" in response.headers.get("Location", ""):
        assert login(client).status_code == 302


@settings(FUZZ, max_examples=80 * SCALE)
@given(data=st.data())
def test_admin_gets_never_fail(admin_app, data):
    application, client = admin_app
    rule = data.draw(st.sampled_from([r for r in _rules(application) if "GET" in r.methods]), label="rule")
    path = _path(rule, data)
    response = client.get(path, query_string=_pairs(data, QUERY_NAMES))
    assert response.status_code < 500, f"GET {path} answered {response.status_code}"
    event(f"GET {response.status_code}")


@settings(FUZZ, max_examples=80 * SCALE)
@given(data=st.data())
def test_admin_posts_never_fail(admin_app, data):
    application, client = admin_app
    rule = data.draw(st.sampled_from([r for r in _rules(application) if "POST" in r.methods]), label="rule")
    path = _path(rule, data)
    form = _pairs(data, FORM_NAMES)
    if data.draw(st.integers(min_value=0, max_value=4), label="token") > 0:
        form["csrf_token"] = _token(client)  # mostly a genuine token, so the post reaches the view
    response = client.post(path, data=form)
    assert response.status_code < 500, f"POST {path} answered {response.status_code}"
    event(f"POST {response.status_code}")
    _still_signed_in(client, response)


def test_admin_fuzzing_reaches_the_views(admin_app):
    """Guard for the tests above: signed in, the rules found are served, and a valid note post is stored."""
    from leads.models import Note

    application, client = admin_app
    endpoints = {rule.endpoint for rule in _rules(application)}
    assert {"admin.leads", "admin.lead_note", "admin.deliveries", "alerts.index"} <= endpoints
    assert client.get("/admin/leads").status_code == 200
    response = client.post("/admin/leads/1/notes", data={"csrf_token": _token(client), "body": "fuzz guard"})
    assert response.status_code == 302
    with application.app_context():
        assert db.session.query(Note).count() == 1
