"""CSRF: every state-changing route refuses a post without a token, except the few that carry their own proof."""

from __future__ import annotations

import functools
import uuid

from werkzeug.routing import IntegerConverter, Rule

from tests.support.factories import make_user
from tests.support.forms import SLUG, post_form, signup_data, signup_form
from tests.support.staff import login

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}

# Routes that may skip the CSRF token, each because something else proves the request is genuine.
EXEMPT = {
    "/webhooks/sendgrid": "signed by SendGrid (ECDSA over the raw body)",
    "/unsubscribe/<token>": "RFC 8058 one-click: the signed token is the proof, no cookie is sent",
}
BEARER_PREFIX = "/api/"  # machine clients authenticate with a bearer token, never a cookie


def _is_exempt(rule: Rule) -> bool:
    return rule.rule in EXEMPT or rule.rule.startswith(BEARER_PREFIX)


def _sample_value(rule: Rule, name: str) -> object:
    """A value the converter accepts, so the request reaches the CSRF check rather than a 404."""
    kind = type(rule._converters[name]).__name__
    if isinstance(rule._converters[name], IntegerConverter):  # the app's own id converter is one too
        return 1
    if kind == "UUIDConverter":
        return uuid.uuid4()
    if kind == "AnyConverter":
        return next(iter(rule._converters[name].items))
    return SLUG if name == "slug" else "x"


def _url(app, rule: Rule) -> str:
    values = {name: _sample_value(rule, name) for name in rule.arguments}
    adapter = app.url_map.bind("localhost")
    return adapter.build(rule.endpoint, values, method=sorted(rule.methods & STATE_CHANGING)[0])


def _state_changing_rules(app) -> list[tuple[Rule, str]]:
    return [
        (rule, method)
        for rule in app.url_map.iter_rules()
        for method in sorted((rule.methods or set()) & STATE_CHANGING)
    ]


def _record_calls(app) -> set[str]:
    """Wrap every view so the test knows whether a refused request still reached it."""
    called: set[str] = set()
    for endpoint, view in list(app.view_functions.items()):

        @functools.wraps(view)
        def wrapper(*args, _endpoint=endpoint, _view=view, **kwargs):
            called.add(_endpoint)
            return _view(*args, **kwargs)

        app.view_functions[endpoint] = wrapper
    return called


def test_csrf_is_on_by_default(app):
    assert app.config.get("WTF_CSRF_ENABLED", True) is True
    assert app.extensions.get("csrf") is not None


def test_the_walk_finds_the_routes_we_know(app):
    """Guard: the url_map walk below really sees the state-changing routes (so new ones are covered too)."""
    rules = {rule.rule for rule, _ in _state_changing_rules(app)}
    assert "/<slug>" in rules
    assert "/admin/login" in rules


def test_every_state_changing_route_refuses_a_post_without_token_logged_out(app, client):
    called = _record_calls(app)
    checked = []
    for rule, method in _state_changing_rules(app):
        if _is_exempt(rule):
            continue
        url = _url(app, rule)
        called.clear()
        response = client.open(url, method=method, data={"email": "a@example.com", "status": "booked"})
        is_admin = rule.rule.startswith("/admin")
        redirected_to_login = response.status_code in (302, 303) and "/admin/login" in response.headers["Location"]
        assert response.status_code == 400 or (is_admin and redirected_to_login), (
            f"{method} {rule.rule} without a CSRF token answered {response.status_code}"
        )
        assert rule.endpoint not in called, f"{method} {rule.rule} ran its view without a CSRF token"
        checked.append(rule.rule)
    assert "/<slug>" in checked


def test_every_state_changing_route_refuses_a_post_without_token_logged_in(app, client):
    make_user(app, role="admin")
    login(client)
    called = _record_calls(app)
    checked = []
    for rule, method in _state_changing_rules(app):
        if _is_exempt(rule):
            continue
        called.clear()
        response = client.open(_url(app, rule), method=method, data={"email": "a@example.com", "status": "booked"})
        assert response.status_code == 400, (
            f"{method} {rule.rule} signed in, without a CSRF token: {response.status_code}"
        )
        assert rule.endpoint not in called, f"{method} {rule.rule} ran its view without a CSRF token"
        checked.append(rule.rule)
    assert any(r.startswith("/admin/") and r != "/admin/login" for r in checked), "no admin action was checked"


def test_a_token_from_another_session_is_refused(app):
    first, second = app.test_client(), app.test_client()
    form = signup_form(first)
    signup_form(second)  # the second visitor has a session of their own
    response = second.post(f"/{SLUG}", data=signup_data(form, email="stolen@example.com"))
    assert response.status_code == 400
    from sqlalchemy import select

    from core.db import db
    from leads.models import Lead

    with app.app_context():
        assert db.session.scalars(select(Lead)).first() is None


def test_exempt_routes_have_their_own_proof(app, client):
    """The routes allowed to skip CSRF refuse a forged request by other means."""
    rules = {rule.rule: rule for rule, _ in _state_changing_rules(app)}
    if "/webhooks/sendgrid" in rules:
        response = client.post("/webhooks/sendgrid", json=[{"event": "bounce", "email": "a@example.com"}])
        assert response.status_code in (401, 403), f"unsigned webhook answered {response.status_code}"
    if "/unsubscribe/<token>" in rules:
        response = client.post("/unsubscribe/forged-token", data={"List-Unsubscribe": "One-Click"})
        assert response.status_code in (400, 404), f"forged one-click unsubscribe answered {response.status_code}"
    for rule, method in _state_changing_rules(app):
        if rule.rule.startswith(BEARER_PREFIX):
            response = client.open(_url(app, rule), method=method, json={"email": "a@example.com", "status": "booked"})
            assert response.status_code in (401, 403), (
                f"{method} {rule.rule} without a bearer token answered {response.status_code}"
            )
    missing = [path for path in ("/webhooks/sendgrid", "/unsubscribe/<token>") if path not in rules]
    assert not missing, f"routes not registered yet: {missing}"


def test_over_https_a_post_must_come_from_our_own_pages(app):
    """Flask-WTF's strict referrer check (WTF_CSRF_SSL_STRICT), kept by core.signing.CSRFProtect: a genuine token
    is not enough over HTTPS when the post was not sent from one of our pages."""
    from sqlalchemy import func, select

    from core.db import db
    from leads.models import Lead

    https = {"base_url": "https://clinic.example"}
    visitor = app.test_client()
    form = post_form(visitor.get(f"/{SLUG}", **https).get_data(as_text=True))
    cases = [
        ({}, 400),  # no Referer at all
        ({"Referer": "https://elsewhere.example/stem-cell-therapy"}, 400),
        ({"Referer": "http://clinic.example/stem-cell-therapy"}, 400),  # the same host, not over HTTPS
        ({"Referer": "https://clinic.example/stem-cell-therapy"}, 303),
    ]
    for number, (headers, status) in enumerate(cases):
        data = signup_data(form, email=f"referrer{number}@example.com")
        response = visitor.post(f"/{SLUG}", data=data, headers=headers, **https)
        assert response.status_code == status, (headers, response.status_code)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Lead)) == 1
