"""Signing kept per key (core.signing): the session cookie, the CSRF token and the form's start time stay as strict
as Flask's and Flask-WTF's own, and nothing one visitor was given ever reaches another."""

from __future__ import annotations

import secrets
import time
import warnings

import pytest
from flask import session as flask_session
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import validate_csrf as stock_validate_csrf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itsdangerous import BadSignature, Signer, TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import func, select
from wtforms import ValidationError

from core import signing
from core.db import db
from leads.forms import sign_started
from leads.models import Lead
from tests.support.database import fresh_app
from tests.support.forms import SLUG, signup_data, signup_form

STOCK_SESSION = SecureCookieSessionInterface()


def _session_cookie(client) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None, "the landing page set no session cookie"
    return cookie.value


def _stock_session(app, cookie: str) -> dict:
    """The cookie read by Flask's own interface: what any stock Flask with this key would see."""
    return dict(STOCK_SESSION.get_signing_serializer(app).loads(cookie))


def _leads(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Lead))


def test_each_visitor_gets_a_token_of_their_own_session(app):
    """Two first visits: two secrets, two tokens, and each token signs its own visitor's secret only."""
    visitors = [app.test_client() for _ in range(3)]
    forms = [signup_form(visitor) for visitor in visitors]
    tokens = [form.hidden()["csrf_token"] for form in forms]
    secrets_ = [_stock_session(app, _session_cookie(visitor))["csrf_token"] for visitor in visitors]
    assert len(set(tokens)) == len(set(secrets_)) == 3
    stock = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="wtf-csrf-token")
    assert [stock.loads(token) for token in tokens] == secrets_


def test_a_token_works_only_with_the_session_it_came_from(app):
    first, second = app.test_client(), app.test_client()
    first_form, second_form = signup_form(first), signup_form(second)
    # Swapped: each visitor posts the other's token with their own cookie.
    assert first.post(f"/{SLUG}", data=signup_data(second_form, email="a@example.com")).status_code == 400
    assert second.post(f"/{SLUG}", data=signup_data(first_form, email="b@example.com")).status_code == 400
    assert _leads(app) == 0
    # Their own tokens still work.
    assert first.post(f"/{SLUG}", data=signup_data(first_form, email="a@example.com")).status_code == 303
    assert second.post(f"/{SLUG}", data=signup_data(second_form, email="b@example.com")).status_code == 303
    assert _leads(app) == 2


def test_a_returning_visitor_keeps_their_secret_and_gets_a_fresh_page(app, client):
    first = signup_form(client)
    secret = _stock_session(app, _session_cookie(client))["csrf_token"]
    again = signup_form(client)
    assert _stock_session(app, _session_cookie(client))["csrf_token"] == secret
    stock = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="wtf-csrf-token")
    assert stock.loads(again.hidden()["csrf_token"]) == stock.loads(first.hidden()["csrf_token"]) == secret


def test_a_tampered_or_forged_token_is_refused(app, client):
    form = signup_form(client)
    token = form.hidden()["csrf_token"]
    secret = _stock_session(app, _session_cookie(client))["csrf_token"]
    forged = URLSafeTimedSerializer("not-the-key", salt="wtf-csrf-token").dumps(secret)
    # A letter inside the signature (the last one also carries unused base64 bits, so it can change harmlessly).
    flipped = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    for bad in (forged, flipped, token + "x", ""):
        data = {**signup_data(form, email="forged@example.com"), "csrf_token": bad}
        assert client.post(f"/{SLUG}", data=data).status_code == 400, bad
    assert _leads(app) == 0


def test_a_session_cookie_signed_with_another_key_is_not_a_session(app, make_config):
    """After SECRET_KEY changes, yesterday's cookie and token are refused (the kept serializers follow the key)."""
    client = app.test_client()
    form = signup_form(client)
    db.engine.dispose()
    for rotated in fresh_app(make_config(SECRET_KEY="a-new-secret-key")):
        response = rotated.test_client()
        response.set_cookie("session", _session_cookie(client))
        assert response.post(f"/{SLUG}", data=signup_data(form, email="old@example.com")).status_code == 400
        assert _leads(rotated) == 0


def test_a_cookie_of_the_previous_key_still_works_during_a_rotation(make_config):
    """SECRET_KEY_FALLBACKS: the kept serializer reads the old key's cookie and token, and signs with the new key."""
    for old in fresh_app(make_config(SECRET_KEY="the-old-key")):
        client = old.test_client()
        form = signup_form(client)
        old_cookie = _session_cookie(client)
        db.engine.dispose()
    config = make_config(SECRET_KEY="the-new-key")
    config.SECRET_KEY_FALLBACKS = ["the-old-key"]
    config.WTF_CSRF_SECRET_KEY = "the-old-key"  # Flask-WTF signs its tokens with one key: keep the old one here
    for new in fresh_app(config):
        with new.app_context():
            started = sign_started()  # the fill-time stamp is signed with SECRET_KEY alone: take the new key's
        visitor = new.test_client()
        visitor.set_cookie("session", old_cookie)
        data = signup_data(form, email="kept@example.com", started=started)
        assert visitor.post(f"/{SLUG}", data=data).status_code == 303
        assert _leads(new) == 1
        fresh = new.test_client()
        signup_form(fresh)
        new_cookie = _session_cookie(fresh)
        assert STOCK_SESSION.get_signing_serializer(new).loads(new_cookie)  # a stock Flask with the new key reads it
        with pytest.raises(BadSignature):
            URLSafeTimedSerializer("the-old-key", salt="cookie-session").loads(new_cookie)


@pytest.mark.parametrize(
    "value",
    [1764433800.123, {"csrf_token": secrets.token_hex(20)}, ["stem-cell-therapy", "headline:b"], "a" * 500, {"x": []}],
)
def test_kept_serializers_sign_as_itsdangerous_does_and_read_its_values(value):
    key = "some-key"
    stock = URLSafeSerializer(key, salt="s")
    kept = signing.serializer(key, "s")
    assert kept.loads(stock.dumps(value)) == value
    assert stock.loads(kept.dumps(value)) == value
    assert kept.dumps(value) == stock.dumps(value) or len(stock.dumps(value)) < len(kept.dumps(value))
    timed_stock = URLSafeTimedSerializer(key, salt="t")
    timed = signing.timed_serializer(key, "t")
    assert timed.loads(timed_stock.dumps(value), max_age=60) == value
    assert timed_stock.loads(timed.dumps(value), max_age=60) == value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=st.one_of(st.text(max_size=80), st.lists(st.text(max_size=10), max_size=4), st.floats(allow_nan=False)),
    key=st.binary(min_size=1, max_size=80),
    salt=st.text(max_size=20),
)
def test_a_kept_timed_serializer_writes_the_very_bytes_itsdangerous_writes(monkeypatch, value, key, salt):
    """The one-step sign and the kept JSON encoder (CSRF tokens, session cookies): the same string, signature
    included, for text, lists and numbers alike (non-ASCII kept as itsdangerous keeps it)."""
    monkeypatch.setattr("time.time", lambda: 1764433800.0)
    stock = URLSafeTimedSerializer(key, salt=salt).dumps(value)
    kept = signing.timed_serializer(key, salt).dumps(value)
    # Under COMPRESS_FROM bytes the kept one never compresses; itsdangerous keeps zlib when it is shorter.
    assert kept == stock or (len(stock) < len(kept) and stock.startswith(".") and not kept.startswith("."))
    signer = signing.KeyedTimestampSigner([key], salt=salt)
    assert signer.sign(b"payload") == TimestampSigner(key, salt=salt).sign(b"payload")


def test_a_new_visitors_session_cookie_is_exactly_flasks(app, monkeypatch):
    """The fast paths (no tagging walk, no zlib for short payloads) give the very bytes stock Flask gives."""
    monkeypatch.setattr("time.time", lambda: 1764433800.0)  # the signed value holds the time: one for both
    with app.test_request_context():
        kept = app.session_interface.get_signing_serializer(app)
        stock = STOCK_SESSION.get_signing_serializer(app)
        for _ in range(50):
            session = {"csrf_token": secrets.token_hex(20)}  # as Flask-WTF and csrf_token() make it
            assert kept.dumps(session) == stock.dumps(session)
            assert kept.loads(stock.dumps(session)) == stock.loads(kept.dumps(session)) == session


_TRICKY_TEXT = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(['"', "\\", "\x7f", "\x1f"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key=st.one_of(_TRICKY_TEXT, st.sampled_from([" t", " di", "csrf_token", "_fresh"])),
    value=st.one_of(_TRICKY_TEXT, st.integers(), st.sampled_from([secrets.token_hex(20)])),
)
def test_a_one_value_session_is_written_exactly_as_flask_writes_it(app, key, value):
    """The one-value session's JSON written by hand: Flask's very cookie for any key (tags included) and value."""
    with app.test_request_context():
        assert app.session_interface.serializer.dumps({key: value}) == STOCK_SESSION.serializer.dumps({key: value})
        cookie = app.session_interface.get_signing_serializer(app).dumps({key: value})
        assert STOCK_SESSION.get_signing_serializer(app).loads(cookie) == {key: value}


@pytest.mark.parametrize(
    ("vary", "contents", "accessed", "modified", "permanent"),
    [
        (None, {"csrf_token": "a" * 40}, True, True, False),  # a new visitor's page view
        ("Accept-Encoding", {"csrf_token": "a" * 40}, True, True, False),
        ("Cookie", {"csrf_token": "a" * 40}, True, False, True),  # a returning visitor, permanent session
        ("accept-encoding, cookie", {"csrf_token": "a" * 40}, True, True, False),
        (None, {}, True, True, False),  # a session emptied (logout): the cookie is deleted
        ("Origin", {}, True, True, False),
        (("Cookie", "Origin"), {"csrf_token": "a" * 40}, True, True, False),  # two Vary headers: the first counts
        (("Origin", "Cookie"), {"csrf_token": "a" * 40}, True, True, False),
        (None, {}, False, False, False),  # a response that never touched the session
        (None, {"csrf_token": "a" * 40}, False, False, False),
    ],
)
def test_saving_a_session_sets_the_headers_stock_flask_sets(
    app, monkeypatch, vary, contents, accessed, modified, permanent
):
    """The kept interface's save_session writes the very Set-Cookie and Vary headers Flask's own writes."""
    monkeypatch.setattr("time.time", lambda: 1764433800.0)
    answers = []
    with app.test_request_context():
        for interface in (app.session_interface, STOCK_SESSION):
            session = interface.session_class(contents)
            session.accessed, session.modified, session.permanent = accessed, modified, permanent
            response = app.response_class("page")
            for value in (vary,) if isinstance(vary, str) else vary or ():
                response.headers.add("Vary", value)
            interface.save_session(app, session, response)
            answers.append((response.headers.getlist("Set-Cookie"), response.headers.getlist("Vary")))
    assert answers[0] == answers[1]
    assert answers[0][1] != [] or not accessed


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(["session", "nexgen_session", "séance"]),
    value=st.one_of(
        st.from_regex(r"[A-Za-z0-9_.-]{0,120}", fullmatch=True),  # what signed values are made of
        st.text(max_size=40),  # anything else goes through Werkzeug and may be quoted
    ),
    domain=st.sampled_from([None, "example.org", ".clinic.example"]),
    path=st.sampled_from(["/", "/clinic", "/a b;c"]),
    secure=st.booleans(),
    partitioned=st.booleans(),
    samesite=st.sampled_from([None, "Lax", "strict", "None"]),
    httponly=st.booleans(),
    expires=st.sampled_from([None, 1764433800]),
    max_size=st.sampled_from([4093, 0, 60]),
)
def test_the_session_cookie_header_is_werkzeugs_for_any_settings(
    app, name, value, domain, path, secure, partitioned, samesite, httponly, expires, max_size
):
    """The Set-Cookie header written with the attributes' part kept equals response.set_cookie's, over names,
    values (quoted or not), every cookie setting, expiry dates and the size limit."""
    attributes = {
        "domain": domain,
        "path": path,
        "secure": secure,
        "partitioned": partitioned,
        "samesite": samesite,
        "httponly": httponly,
    }
    app.config["MAX_COOKIE_SIZE"] = max_size
    with app.test_request_context():
        kept, stock = app.response_class("page"), app.response_class("page")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Werkzeug warns about the over-long ones, both ways
            for _ in range(2):  # the first builds the attributes' part, the second reuses it
                signing._set_cookie(app, kept, name, value, expires, attributes)
                stock.set_cookie(name, value, expires=expires, **attributes)
        assert kept.headers.getlist("Set-Cookie") == stock.headers.getlist("Set-Cookie")


def test_values_flask_tags_are_still_tagged(app):
    from markupsafe import Markup

    with app.test_request_context():
        kept = app.session_interface.get_signing_serializer(app)
        for session in ({"m": Markup("<b>x</b>")}, {" t": "looks like a tag"}, {"t": (1, 2)}, {"b": b"\x00"}):
            assert STOCK_SESSION.get_signing_serializer(app).loads(kept.dumps(session)) == session


@settings(max_examples=300, deadline=None)
@given(
    key=st.binary(min_size=1, max_size=200),
    old_key=st.binary(min_size=1, max_size=80),
    value=st.binary(max_size=300),
    salt=st.text(max_size=20),
    derivation=st.sampled_from(["django-concat", "hmac", "concat", "none"]),
)
def test_a_kept_signer_signs_and_verifies_exactly_as_itsdangerous(key, old_key, value, salt, derivation):
    """Any key (longer than the hash's block too), value, salt and key derivation: the very signature."""
    stock = Signer(key, salt=salt, key_derivation=derivation)
    old = Signer(old_key, salt=salt, key_derivation=derivation)
    kept = signing.KeyedSigner([old_key, key], salt=salt, key_derivation=derivation)
    for _ in range(2):  # the first signature keys an HMAC, the second copies it
        assert kept.get_signature(value) == stock.get_signature(value)
        assert kept.verify_signature(value, stock.get_signature(value))
        assert kept.verify_signature(value, old.get_signature(value))  # the previous key, during a rotation
    assert not kept.verify_signature(value + b"!", stock.get_signature(value))
    assert not kept.verify_signature(value, Signer(key + b"!", salt=salt).get_signature(value))


@pytest.mark.parametrize("forged", ["", "abc", "x.y.z", "!!!", signing.serializer("other-key", "s").dumps(1.0)])
def test_kept_serializers_refuse_what_is_not_theirs(forged):
    with pytest.raises(BadSignature):
        signing.serializer("some-key", "s").loads(forged)


def _refusal(check, data) -> str | None:
    """The reason a CSRF check gives for `data`, or None when it accepts it."""
    try:
        check(data)
    except ValidationError as exc:
        return exc.args[0]
    return None


def _same_verdicts(app, data, visitor_secret: str | None) -> None:
    with app.test_request_context(method="POST"):
        if visitor_secret is not None:
            flask_session["csrf_token"] = visitor_secret
        assert _refusal(signing.validate_csrf, data) == _refusal(stock_validate_csrf, data), data


def test_the_kept_csrf_check_gives_flask_wtfs_verdict_and_reason(app, monkeypatch):
    """Every case CSRFProtect tells apart: accepted, missing, no session secret, expired, invalid, mismatched."""
    monkeypatch.setitem(app.config, "WTF_CSRF_TIME_LIMIT", 3600)
    key, secret = app.config["SECRET_KEY"], secrets.token_hex(20)
    stock = URLSafeTimedSerializer(key, salt="wtf-csrf-token")
    good = stock.dumps(secret)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - 7200)
    expired = stock.dumps(secret)
    monkeypatch.setattr(time, "time", real_time)
    cases = [
        good,
        expired,
        "",
        None,
        good[:-1],
        good + "x",
        stock.dumps(secrets.token_hex(20)),  # another visitor's secret
        URLSafeTimedSerializer("another-key", salt="wtf-csrf-token").dumps(secret),
        URLSafeTimedSerializer(key, salt="another-salt").dumps(secret),
    ]
    verdicts = set()
    for data in cases:
        for visitor_secret in (secret, None):
            _same_verdicts(app, data, visitor_secret)
        with app.test_request_context(method="POST"):
            flask_session["csrf_token"] = secret
            verdicts.add(_refusal(signing.validate_csrf, data))
    assert verdicts == {
        None,
        "The CSRF token has expired.",
        "The CSRF token is missing.",
        "The CSRF token is invalid.",
        "The CSRF tokens do not match.",
    }
    monkeypatch.setitem(app.config, "WTF_CSRF_TIME_LIMIT", None)  # no limit: the old token is good again
    _same_verdicts(app, expired, secret)
    with app.test_request_context(method="POST"):
        flask_session["csrf_token"] = secret
        assert _refusal(signing.validate_csrf, expired) is None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.text(max_size=120), visitor_secret=st.one_of(st.none(), st.text(min_size=1, max_size=40)))
def test_the_kept_csrf_check_agrees_with_flask_wtf_on_any_text(app, data, visitor_secret):
    _same_verdicts(app, data, visitor_secret)
