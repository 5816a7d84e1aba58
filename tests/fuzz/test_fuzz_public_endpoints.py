"""Hypothesis throws random posts at everything a visitor or a provider can reach: never a 5xx, never a bad lead."""

from __future__ import annotations

import io
import json
import re
from urllib.parse import quote

import phonenumbers
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from app import create_app
from core.db import db
from leads.models import INTERESTS, STATUSES, Lead, Submission
from leads.services import normalize_email
from tests.fuzz.strategies import FUZZ, SCALE, json_values, nested_json, value
from tests.support.forms import SLUG, VALID, signup_data, signup_form

FORM_FIELDS = (
    "csrf_token",
    "started",
    "first_name",
    "last_name",
    "email",
    "phone",
    "interest",
    "preferred_contact",
    "message",
    "email_consent",
    "privacy_ack",
    "website",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "referrer",
    "landing",
    "tz",
)
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def field_strategy(name: str) -> st.SearchStrategy:
    """Omitted, the valid answer, a random value, or the field repeated with several values."""
    valid = VALID.get(name)
    if valid is None:
        return st.one_of(st.none(), value, st.lists(value, min_size=2, max_size=4))
    # The valid answer most often, so that many posts pass validation and reach the database.
    single = st.one_of(st.just(valid), value)
    return st.one_of(
        st.just(valid), st.just(valid), st.just(valid), st.none(), single, st.lists(single, min_size=2, max_size=3)
    )


posts = st.fixed_dictionaries(
    {
        **{name: field_strategy(name) for name in FORM_FIELDS},
        # Mostly empty: a filled honeypot makes the post a bot's, and bots are dropped before validation.
        "website": st.one_of(st.none(), st.none(), st.none(), st.just(""), value),
    }
)


def _flatten(post: dict[str, object], keep: dict[str, str]) -> MultiDict:
    """Form pairs; `keep` values (a genuine token and start time) stand in for the fuzzed ones when given."""
    pairs: list[tuple[str, str]] = []
    for name, val in post.items():
        if name in keep:
            pairs.append((name, keep[name]))
        elif isinstance(val, list):
            pairs.extend((name, v) for v in val)
        elif val is not None:
            pairs.append((name, val))
    return MultiDict(pairs)


def _submission_count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Submission))


def assert_only_valid_leads() -> None:
    """What the fuzzing must leave behind: every stored lead is one a valid form could have made."""
    db.session.rollback()
    for lead in db.session.scalars(select(Lead)):
        assert lead.email, lead.id
        assert normalize_email(lead.email) == lead.email, lead.email
        assert lead.first_name, lead.id
        assert lead.first_name.strip() == lead.first_name, repr(lead.first_name)
        assert not CONTROL.search(lead.first_name + (lead.last_name or "")), repr((lead.first_name, lead.last_name))
        assert lead.interest in INTERESTS, lead.interest
        assert lead.status in STATUSES, lead.status
        if lead.phone is not None:
            assert E164.match(lead.phone), lead.phone
            assert phonenumbers.is_valid_number(phonenumbers.parse(lead.phone, None)), lead.phone


@pytest.fixture
def fuzz_app(app, make_config):
    """The app on the clean database of `app`, with rate limits off so the limiter never hides a crash."""
    application = create_app(make_config(RATELIMIT_ENABLED=False))
    with application.app_context():
        yield application


@pytest.fixture
def fuzz_client(fuzz_app):
    return fuzz_app.test_client()


@pytest.fixture
def page(fuzz_client):
    """The landing form read once; its token stays valid for this client's session across examples."""
    return signup_form(fuzz_client)


def _no_5xx(response, what: str) -> None:
    assert response.status_code < 500, f"{what} answered {response.status_code}"


@settings(FUZZ, max_examples=100 * SCALE)
@given(post=posts)
def test_signup_with_valid_token_never_fails(fuzz_client, page, post):
    genuine = {k: v for k, v in page.hidden().items() if k in ("csrf_token", "started")}
    before = _submission_count()
    response = fuzz_client.post(f"/{SLUG}", data=_flatten(post, genuine))
    _no_5xx(response, "signup")
    assert response.status_code in (303, 400, 413), response.status_code
    event(f"status {response.status_code}, stored: {_submission_count() > before}")
    assert_only_valid_leads()


@FUZZ
@given(post=posts)
def test_signup_with_random_tokens_never_fails(fuzz_client, page, post):
    # The client has a session, but the post carries whatever Hypothesis made.
    response = fuzz_client.post(f"/{SLUG}", data=_flatten(post, {}))
    _no_5xx(response, "signup")
    assert_only_valid_leads()


@FUZZ
@given(
    body=st.one_of(st.binary(max_size=2000), st.text(max_size=2000).map(lambda t: t.encode("utf-8"))),
    content_type=st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "multipart/form-data; boundary=xyz",
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded; charset=utf-16",
            "",
        ]
    ),
    slug=st.one_of(st.just(SLUG), st.text(min_size=1, max_size=40)),
)
def test_signup_with_raw_bodies_never_fails(fuzz_client, page, body, content_type, slug):
    headers = {"Content-Type": content_type} if content_type else {}
    response = fuzz_client.post("/" + quote(slug, safe=""), data=body, headers=headers)
    _no_5xx(response, "raw signup post")
    assert_only_valid_leads()


@FUZZ
@given(
    files=st.dictionaries(
        st.sampled_from(FORM_FIELDS), st.tuples(st.binary(max_size=500), st.text(max_size=30)), max_size=4
    )
)
def test_signup_with_file_uploads_never_fails(fuzz_client, page, files):
    data = signup_data(page, email="files@example.com")
    for name, (content, filename) in files.items():
        data[name] = (io.BytesIO(content), filename or "f.bin")
    response = fuzz_client.post(f"/{SLUG}", data=data, content_type="multipart/form-data")
    _no_5xx(response, "multipart signup")
    assert_only_valid_leads()


@pytest.mark.parametrize("size", [64 * 1024 - 600, 64 * 1024 + 1, 1024 * 1024])
def test_signup_near_and_over_the_body_limit(fuzz_client, size):
    form = signup_form(fuzz_client)
    data = signup_data(form, message="x" * size)
    response = fuzz_client.post(f"/{SLUG}", data=data)
    assert response.status_code in (400, 413), response.status_code
    assert db.session.scalars(select(Lead)).first() is None


def test_signup_fuzz_still_accepts_a_person(fuzz_client):
    """Guard for the fuzz tests above: the valid baseline they mutate is accepted, so they do reach the storage."""
    form = signup_form(fuzz_client)
    response = fuzz_client.post(f"/{SLUG}", data=signup_data(form))
    assert response.status_code == 303
    assert db.session.scalars(select(Lead.email)).all() == [VALID["email"].lower()]


@FUZZ
@given(
    token=st.one_of(st.text(min_size=1, max_size=300), st.from_regex(r"[A-Za-z0-9_\-\.]{1,250}", fullmatch=True)),
    method=st.sampled_from(["GET", "POST"]),
    body=st.one_of(
        st.just(b"List-Unsubscribe=One-Click"),
        st.binary(max_size=500),
        st.text(max_size=500).map(lambda t: t.encode("utf-8")),
    ),
    content_type=st.sampled_from(["application/x-www-form-urlencoded", "multipart/form-data", "text/plain", ""]),
)
def test_unsubscribe_with_random_tokens_never_fails(fuzz_client, token, method, body, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    url = "/unsubscribe/" + quote(token, safe="")
    response = fuzz_client.get(url) if method == "GET" else fuzz_client.post(url, data=body, headers=headers)
    _no_5xx(response, f"{method} unsubscribe")
    assert response.status_code != 200 or method == "GET", "a random token unsubscribed someone"


@FUZZ
@given(lead_id=st.integers(min_value=1, max_value=2**31), method=st.sampled_from(["GET", "POST"]))
def test_unsubscribe_with_signed_tokens_for_missing_leads_never_fails(fuzz_client, lead_id, method):
    from mailer.tokens import make_token

    url = f"/unsubscribe/{make_token(lead_id)}"
    one_click = b"List-Unsubscribe=One-Click"
    response = fuzz_client.get(url) if method == "GET" else fuzz_client.post(url, data=one_click)
    _no_5xx(response, f"{method} unsubscribe of a missing lead")


@FUZZ
@given(token=st.text(min_size=1, max_size=300))
def test_confirm_with_random_tokens_never_fails(fuzz_client, token):
    response = fuzz_client.get("/confirm/" + quote(token, safe=""))
    _no_5xx(response, "confirm")
    # 308: a token holding "/" makes a path with "//", which the router tidies with a redirect.
    assert response.status_code in (308, 400, 404), response.status_code


@FUZZ
@given(
    body=st.one_of(st.binary(max_size=2000), json_values().map(lambda v: json.dumps(v).encode()), nested_json()),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "X-Twilio-Email-Event-Webhook-Signature",
                "X-Twilio-Email-Event-Webhook-Timestamp",
                "Content-Type",
                "Authorization",
            ]
        ),
        st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120),
        max_size=4,
    ),
)
def test_sendgrid_webhook_with_random_bodies_never_fails(fuzz_client, body, headers):
    response = fuzz_client.post("/webhooks/sendgrid", data=body, headers=headers)
    _no_5xx(response, "webhook")
    assert not 200 <= response.status_code < 300, "an unsigned webhook post was accepted"


@FUZZ
@given(
    body=st.one_of(st.binary(max_size=1000), json_values().map(lambda v: json.dumps(v).encode()), nested_json()),
    auth=st.one_of(
        st.none(),
        st.just("Bearer test-booking-token"),
        st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80),
    ),
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]),
)
def test_bookings_api_with_random_requests_never_fails(fuzz_client, body, auth, method, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    if auth is not None:
        headers["Authorization"] = auth
    response = fuzz_client.open("/api/bookings", method=method, data=body, headers=headers)
    _no_5xx(response, f"{method} /api/bookings")
    assert_only_valid_leads()


# -- provider and machine clients with valid credentials: the payload is the only thing that is wrong -----

SIGNER = None


def _signer():
    """The fake SendGrid's webhook signer, made once (key generation is the slow part)."""
    global SIGNER
    if SIGNER is None:
        from tests.fakes.sendgrid import WebhookSigner

        SIGNER = WebhookSigner()
    return SIGNER


@pytest.fixture
def signed_client(app, make_config, clock):
    """A client of an app that trusts the fake's signer, with one lead who has had the welcome email."""
    application = create_app(make_config(RATELIMIT_ENABLED=False, SENDGRID_WEBHOOK_PUBLIC_KEY=_signer().public_key))
    client = application.test_client()
    with application.app_context():
        form = signup_form(client)
        assert client.post(f"/{SLUG}", data=signup_data(form)).status_code == 303
        assert application.test_cli_runner().invoke(args=["nurture", "tick"]).exit_code == 0
        yield client


id_like = st.one_of(
    st.integers(),
    st.integers(min_value=0, max_value=5).map(str),
    st.text(max_size=30),
    st.from_regex(r"[0-9]{15,25}", fullmatch=True),
)
events = st.fixed_dictionaries(
    {
        "event": st.one_of(
            st.sampled_from(
                [
                    "processed",
                    "delivered",
                    "open",
                    "click",
                    "bounce",
                    "dropped",
                    "spamreport",
                    "unsubscribe",
                    "group_unsubscribe",
                    "deferred",
                ]
            ),
            st.text(max_size=40),
        ),
        "sg_event_id": st.one_of(st.uuids().map(str), st.text(max_size=200)),
    },
    optional={
        "email": st.one_of(st.just(VALID["email"]), st.emails(), st.text(max_size=400)),
        "timestamp": st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
        "delivery_id": id_like,
        "sg_message_id": st.text(max_size=300),
        "reason": st.text(max_size=600),
        "type": st.sampled_from(["blocked", "bounce", ""]),
        "url": st.text(max_size=300),
        "campaign": st.text(max_size=80),
        "step": st.text(max_size=80),
    },
)


@FUZZ
@given(batch=st.lists(st.one_of(events, json_values()), max_size=6), as_object=st.booleans())
def test_sendgrid_webhook_with_signed_random_events_never_fails(signed_client, clock, batch, as_object):
    payload = {"events": batch} if as_object else batch
    body, headers = _signer().sign(json.dumps(payload).encode("utf-8"), timestamp=clock.now())
    response = signed_client.post("/webhooks/sendgrid", data=body, headers=headers)
    _no_5xx(response, "signed webhook")
    assert response.status_code == (400 if as_object else 200), response.status_code
    assert_only_valid_leads()


@FUZZ
@given(
    payload=st.one_of(
        st.fixed_dictionaries(
            {
                "email": st.one_of(
                    st.just(VALID["email"]),
                    st.just(" ADA@Example.COM "),
                    st.emails(),
                    st.text(max_size=400),
                    json_values(),
                )
            },
            optional={"status": st.text(max_size=20), "at": st.text(max_size=30), "id": st.integers()},
        ),
        json_values(),
    )
)
def test_bookings_api_with_valid_token_and_random_json_never_fails(signed_client, payload):
    headers = {"Authorization": "Bearer test-booking-token"}
    response = signed_client.post("/api/bookings", json=payload, headers=headers)
    _no_5xx(response, "authorized booking")
    assert response.status_code in (200, 400, 404), response.status_code
    assert_only_valid_leads()


@FUZZ
@given(body=st.one_of(nested_json(), st.binary(max_size=500)))
def test_json_endpoints_with_valid_credentials_and_raw_bodies_never_fail(signed_client, clock, body):
    """Signed webhook batches and authorized booking calls whose body is deeply nested or not JSON at all."""
    signed, headers = _signer().sign(body, timestamp=clock.now())
    webhook = signed_client.post("/webhooks/sendgrid", data=signed, headers=headers)
    # 200 when the parser could nest that deep: an array holding no event objects is an empty batch.
    assert webhook.status_code in (200, 400), webhook.status_code
    auth = {"Authorization": "Bearer test-booking-token", "Content-Type": "application/json"}
    booking = signed_client.post("/api/bookings", data=body, headers=auth)
    assert booking.status_code == 400, booking.status_code


@pytest.mark.parametrize(
    "event",
    [
        {"event": "processed", "sg_event_id": "\x00"},
        {"event": "bounce", "sg_event_id": "nul-email", "email": "ada@example.com\x00"},
        {"event": "open", "sg_event_id": "huge-id", "delivery_id": "31405393300116030440451"},
        {"event": "open", "sg_event_id": "superscript-id", "delivery_id": "²"},
    ],
    ids=["nul-event-id", "nul-email", "delivery-id-past-bigint", "unicode-digit-id"],
)
def test_signed_webhook_events_found_by_fuzzing(signed_client, clock, event):
    """Regressions Hypothesis found: each was a 500 (NUL on PostgreSQL, ids past BIGINT, non-ASCII digits)."""
    body, headers = _signer().sign([event], timestamp=clock.now())
    response = signed_client.post("/webhooks/sendgrid", data=body, headers=headers)
    assert response.status_code == 200, response.status_code


@FUZZ
@given(
    email=st.one_of(st.just("staff@example.com"), st.emails(), value),
    password=st.one_of(st.just(""), value),
    next_url=st.one_of(st.none(), st.text(max_size=200)),
)
def test_admin_login_with_random_input_never_fails(fuzz_client, email, password, next_url):
    from tests.support.forms import post_form

    page = fuzz_client.get("/admin/login")
    token = post_form(page.get_data(as_text=True)).hidden()["csrf_token"]
    data = {"csrf_token": token, "email": email, "password": password}
    if next_url is not None:
        data["next"] = next_url
    response = fuzz_client.post("/admin/login", data=data)
    _no_5xx(response, "admin login")
    assert response.status_code in (400, 401, 413), response.status_code


def test_admin_login_with_nul_in_the_email(fuzz_client):
    """Regression found by fuzzing: PostgreSQL refuses NUL in a query, which made the login form answer 500."""
    from tests.support.forms import post_form

    page = fuzz_client.get("/admin/login")
    token = post_form(page.get_data(as_text=True)).hidden()["csrf_token"]
    data = {"csrf_token": token, "email": "staff\x00@example.com", "password": "x\x00"}
    assert fuzz_client.post("/admin/login", data=data).status_code == 401


@pytest.mark.parametrize(
    "query",
    ["utm_source=ads%00&utm_campaign=%00", "utm_source=" + "%C4%B0" * 100],
    ids=["nul", "grows-when-lowercased"],
)
def test_odd_utm_tags_do_not_stop_page_view_counts(fuzz_app, fuzz_client, query):
    """Found while fuzzing: on PostgreSQL one visit with %00 in a UTM tag made every later flush fail for good."""
    from public.models import PageView

    assert fuzz_client.get(f"/{SLUG}?{query}").status_code == 200
    # Another visitor (one visitor's repeat views of a page count once).
    other = {"REMOTE_ADDR": "198.51.100.7"}
    assert fuzz_client.get(f"/{SLUG}?utm_source=newsletter", environ_base=other).status_code == 200
    buffer = fuzz_app.extensions["pageviews"]
    buffer.flush()
    db.session.rollback()
    sources = {row.utm_source: row.views for row in db.session.scalars(select(PageView))}
    assert sources.get("newsletter") == 1, sources
    assert buffer.pending == 0, "views are stuck in the buffer"
