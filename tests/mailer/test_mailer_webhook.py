"""SendGrid's Event Webhook: signatures, staleness, replays, and what each event does to deliveries and leads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from flask import current_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event as event_module
from sqlalchemy import func, insert, select

from alerts.models import WebhookEvent
from core.db import db
from leads.models import Lead
from mailer.models import Delivery, ProviderEvent, Suppression
from mailer.suppression import is_suppressed
from nurture.dispatch import tick
from nurture.models import Enrollment
from tests.support.database import fresh_app
from tests.support.factories import make_lead

URL = "/webhooks/sendgrid"


def sent_delivery(email: str = "kim@example.com") -> Delivery:
    """A signup whose welcome went out through the fake SendGrid."""
    make_lead(current_app._get_current_object(), email, first_name="Kim", message=None)
    tick()
    return db.session.scalars(select(Delivery).join(Lead).where(Lead.email == email)).one()


def event(delivery: Delivery, kind: str, event_id: str, clock, **extra: object) -> dict:
    data = {
        "email": "kim@example.com",
        "timestamp": int(clock.now().timestamp()),
        "event": kind,
        "sg_event_id": event_id,
        "sg_message_id": f"{delivery.provider_message_id}.filter0001.16648.5515E0B88.0",
        "delivery_id": str(delivery.id),
        "campaign": "stem-cell-therapy",
        "step": "welcome",
    }
    data.update(extra)
    return data


def post(client, fake, events, clock, timestamp=None):
    body, headers = fake.sign(events, timestamp if timestamp is not None else clock.now())
    return client.post(URL, data=body, headers=headers)


def post_counting_statements(client, fake, events, clock):
    """post(), with the SQL statements the app ran to answer it."""
    statements = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    event_module.listen(db.engine, "before_cursor_execute", listen)
    try:
        return post(client, fake, events, clock), statements
    finally:
        event_module.remove(db.engine, "before_cursor_execute", listen)


def test_a_signed_batch_is_accepted_and_updates_the_delivery(sendgrid_app, fake_sendgrid, clock):
    client = sendgrid_app.test_client(use_cookies=False)
    with sendgrid_app.app_context():
        delivery = sent_delivery()
        events = [
            event(delivery, "processed", "e1", clock),
            event(delivery, "delivered", "e2", clock),
            event(delivery, "open", "e3", clock),
            event(delivery, "open", "e4", clock),
            event(delivery, "click", "e5", clock, url="http://127.0.0.1:5000/blog/x?utm_source=nurture"),
        ]
        response = post(client, fake_sendgrid, events, clock)
        assert response.status_code == 200
        assert response.get_json()["stored"] == 5
        db.session.expire_all()
        delivery = db.session.get(Delivery, delivery.id)
        assert delivery.state == "delivered"
        assert delivery.delivered_at == clock.now()
        assert (delivery.open_count, delivery.click_count) == (2, 1)
        assert delivery.opened_at == clock.now()
        click = db.session.scalars(select(ProviderEvent).where(ProviderEvent.event == "click")).one()
        assert click.url == "http://127.0.0.1:5000/blog/x"


def test_a_replayed_event_is_counted_once(sendgrid_app, fake_sendgrid, clock):
    client = sendgrid_app.test_client(use_cookies=False)
    with sendgrid_app.app_context():
        delivery = sent_delivery()
        batch = [event(delivery, "open", "same-id", clock)]
        assert post(client, fake_sendgrid, batch, clock).status_code == 200
        clock.advance(seconds=30)
        replay = post(client, fake_sendgrid, batch + batch, clock)
        assert replay.status_code == 200
        assert replay.get_json()["duplicate"] == 2
        db.session.expire_all()
        assert db.session.get(Delivery, delivery.id).open_count == 1
        assert db.session.scalar(select(func.count()).select_from(ProviderEvent)) == 1


def test_a_bad_signature_is_refused_and_changes_nothing(sendgrid_app, fake_sendgrid, clock):
    client = sendgrid_app.test_client(use_cookies=False)
    with sendgrid_app.app_context():
        delivery = sent_delivery()
        body, headers = fake_sendgrid.sign([event(delivery, "open", "e1", clock)], clock.now())
        forged = body.replace(b'"open"', b'"bounce"')
        assert client.post(URL, data=forged, headers=headers).status_code == 403
        other_key_body, other_headers = type(fake_sendgrid.signer)().sign(
            [event(delivery, "bounce", "e2", clock)], clock.now()
        )
        assert client.post(URL, data=other_key_body, headers=other_headers).status_code == 403
        assert client.post(URL, data=body).status_code == 403  # no signature headers
        no_sig = {**headers, "X-Twilio-Email-Event-Webhook-Signature": "bm90IGEgc2lnbmF0dXJl"}
        assert client.post(URL, data=body, headers=no_sig).status_code == 403
        assert db.session.scalar(select(func.count()).select_from(ProviderEvent)) == 0
        assert not is_suppressed(db.session, "kim@example.com")


def test_a_stale_timestamp_is_refused(sendgrid_app, fake_sendgrid, clock):
    client = sendgrid_app.test_client(use_cookies=False)
    with sendgrid_app.app_context():
        delivery = sent_delivery()
        old = clock.now() - timedelta(minutes=11)
        response = post(client, fake_sendgrid, [event(delivery, "open", "e1", clock)], clock, timestamp=old)
        assert response.status_code == 403
        recent = clock.now() - timedelta(minutes=9)
        assert post(client, fake_sendgrid, [event(delivery, "open", "e1", clock)], clock, recent).status_code == 200


def test_malformed_json_with_a_valid_signature_is_400(sendgrid_app, fake_sendgrid, clock):
    client = sendgrid_app.test_client(use_cookies=False)
    with sendgrid_app.app_context():
        for raw in (b"{not json", b'{"event": "open"}', b"\xff\xfe"):
            body, headers = fake_sendgrid.sign(raw, clock.now())
            assert client.post(URL, data=body, headers=headers).status_code == 400


def test_a_bounce_suppresses_the_address_and_ends_its_enrollment(sendgrid_app, fake_sendgrid, clock):
    client = sendgrid_app.test_client(use_cookies=False)
    with sendgrid_app.app_context():
        delivery = sent_delivery()
        reason = "550 5.1.1 The email account kim@example.com does not exist"
        bounce = event(delivery, "bounce", "b1", clock, reason=reason, type="bounce")
        assert post(client, fake_sendgrid, [bounce], clock).status_code == 200
        db.session.expire_all()
        assert is_suppressed(db.session, "kim@example.com")
        row = db.session.scalars(select(Suppression)).one()
        assert (row.reason, row.source) == ("bounce", "provider")
        delivery = db.session.get(Delivery, delivery.id)
        assert delivery.state == "bounced"
        assert delivery.bounced_at == clock.now()
        enrollment = db.session.scalars(select(Enrollment).where(Enrollment.lead_id == delivery.lead_id)).one()
        assert enrollment.state not in ("pending", "active")
        stored = db.session.scalars(select(ProviderEvent)).one()
        assert "kim@example.com" not in stored.reason
        assert "does not exist" in stored.reason
        # Two days on, step 2 would be due: nothing leaves.
        clock.advance(days=3)
        tick()
        assert len(fake_sendgrid.snapshot()) == 1


@pytest.mark.parametrize("kind", ["dropped", "spamreport", "unsubscribe", "group_unsubscribe"])
def test_complaints_drops_and_unsubscribes_suppress(sendgrid_app, fake_sendgrid, clock, kind):
    client = sendgrid_app.test_client(use_cookies=False)
    with sendgrid_app.app_context():
        delivery = sent_delivery()
        assert post(client, fake_sendgrid, [event(delivery, kind, "x1", clock)], clock).status_code == 200
        assert db.session.scalars(select(Suppression)).one().reason == kind
        lead = db.session.get(Lead, delivery.lead_id)
        assert (lead.unsubscribed_at is not None) == (kind != "dropped")


def test_processed_resolves_an_unknown_delivery_found_by_message_id(sendgrid_app, fake_sendgrid, clock):
    client = sendgrid_app.test_client(use_cookies=False)
    with sendgrid_app.app_context():
        delivery = sent_delivery()
        with db.write_transaction() as session:
            session.get(Delivery, delivery.id).state = "unknown"
        processed = event(delivery, "processed", "p1", clock)
        del processed["delivery_id"]
        assert post(client, fake_sendgrid, [processed], clock).status_code == 200
        db.session.expire_all()
        assert db.session.get(Delivery, delivery.id).state == "sent"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
_event = st.fixed_dictionaries(
    {},
    optional={
        "event": st.sampled_from(["processed", "delivered", "open", "click", "bounce", "dropped", "spamreport"])
        | st.text(max_size=40),
        "sg_event_id": st.text(max_size=200) | st.integers(),
        "email": st.emails() | st.text(max_size=30) | st.integers(),
        "timestamp": st.integers() | st.text(max_size=12) | st.floats(),
        "delivery_id": st.text(max_size=25) | st.integers(),
        "sg_message_id": st.text(max_size=40),
        "url": st.text(max_size=60),
        "reason": _json,
        "type": st.text(max_size=10),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.lists(_event, max_size=5) | _json)
def test_fuzzed_signed_payloads_never_cause_a_500(sendgrid_app, fake_sendgrid, clock, payload):
    client = sendgrid_app.test_client(use_cookies=False)
    with sendgrid_app.app_context():
        body, headers = fake_sendgrid.sign(json.dumps(payload).encode(), clock.now())
        assert client.post(URL, data=body, headers=headers).status_code in (200, 400)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200), signature=st.text(max_size=100), stamp=st.text(max_size=15))
def test_fuzzed_unsigned_requests_are_refused_without_a_500(sendgrid_app, body, signature, stamp):
    client = sendgrid_app.test_client(use_cookies=False)
    headers = {"X-Twilio-Email-Event-Webhook-Signature": signature, "X-Twilio-Email-Event-Webhook-Timestamp": stamp}
    headers = {k: v for k, v in headers.items() if v.isprintable() and "\n" not in v and "\r" not in v}
    assert client.post(URL, data=body, headers=headers).status_code == 403


# SendGrid's own Signed Event Webhook test vector (sendgrid-python, test/unit/test_eventwebhook.py): a dropped
# event for hello@world.com, signed at 1600112502 with the key below.
SENDGRID_VECTOR_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3G"
    "Rqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
SENDGRID_VECTOR_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
)
SENDGRID_VECTOR_TIMESTAMP = "1600112502"
SENDGRID_VECTOR_PAYLOAD = (
    json.dumps(
        [
            {
                "email": "hello@world.com",
                "event": "dropped",
                "reason": "Bounced Address",
                "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
                "sg_message_id": "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
                "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
                "timestamp": 1600112492,
            }
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    + "\r\n"
).encode()
SENDGRID_VECTOR_HEADERS = {
    "Content-Type": "application/json",
    "X-Twilio-Email-Event-Webhook-Signature": SENDGRID_VECTOR_SIGNATURE,
    "X-Twilio-Email-Event-Webhook-Timestamp": SENDGRID_VECTOR_TIMESTAMP,
}


@pytest.fixture
def vector_app(make_config, fake_sendgrid):
    """The app sending through the fake SendGrid but verifying events with SendGrid's test-vector key."""
    yield from fresh_app(
        make_config(
            MAIL_BACKEND="sendgrid",
            SENDGRID_API_HOST=fake_sendgrid.url,
            SENDGRID_API_KEY=fake_sendgrid.api_key,
            SENDGRID_WEBHOOK_PUBLIC_KEY=SENDGRID_VECTOR_KEY,
            SENDGRID_TIMEOUT=2.0,
            SITE_URL="https://clinic.example",
        )
    )


def test_sendgrids_own_test_vector_is_accepted_and_a_drop_for_another_address_leaves_our_delivery(vector_app, clock):
    """SendGrid's signed drop names our message id but another address: it suppresses that address only."""
    client = vector_app.test_client(use_cookies=False)
    with vector_app.app_context():
        delivery = sent_delivery()
        with db.write_transaction() as session:
            session.get(Delivery, delivery.id).provider_message_id = "LRzXl_NHStOGhQ4kofSm_A"
        clock.set(datetime.fromtimestamp(int(SENDGRID_VECTOR_TIMESTAMP) + 5, UTC))
        response = client.post(URL, data=SENDGRID_VECTOR_PAYLOAD, headers=SENDGRID_VECTOR_HEADERS)
        assert response.status_code == 200
        assert response.get_json()["stored"] == 1
        db.session.expire_all()
        ours = db.session.get(Delivery, delivery.id)
        assert ours.state == "sent"
        assert ours.error is None
        assert is_suppressed(db.session, "hello@world.com")
        assert not is_suppressed(db.session, "kim@example.com")
        assert db.session.scalars(select(ProviderEvent)).one().delivery_id is None


def test_a_bounce_naming_our_delivery_for_another_address_does_not_bounce_it(sendgrid_app, fake_sendgrid, clock):
    client = sendgrid_app.test_client(use_cookies=False)
    with sendgrid_app.app_context():
        delivery = sent_delivery()
        bounce = event(delivery, "bounce", "b-other", clock, email="someone.else@example.org", type="bounce")
        assert post(client, fake_sendgrid, [bounce], clock).status_code == 200
        db.session.expire_all()
        assert db.session.get(Delivery, delivery.id).state == "sent"
        enrollment = db.session.scalars(select(Enrollment).where(Enrollment.lead_id == delivery.lead_id)).one()
        assert enrollment.state == "active"
        assert is_suppressed(db.session, "someone.else@example.org")
        assert not is_suppressed(db.session, "kim@example.com")
        # The same event with the right address, in other letter case, does bounce it.
        right = event(delivery, "bounce", "b-ours", clock, email="Kim@Example.COM", type="bounce")
        assert post(client, fake_sendgrid, [right], clock).status_code == 200
        db.session.expire_all()
        assert db.session.get(Delivery, delivery.id).state == "bounced"


def test_events_without_an_sg_event_id_are_applied_once(sendgrid_app, fake_sendgrid, clock):
    client = sendgrid_app.test_client(use_cookies=False)
    with sendgrid_app.app_context():
        delivery = sent_delivery()
        opened = event(delivery, "open", "unused", clock)
        del opened["sg_event_id"]
        dropped = event(delivery, "dropped", "unused", clock, reason="Bounced Address")
        del dropped["sg_event_id"]
        first = post(client, fake_sendgrid, [opened, dropped, opened], clock)
        assert first.get_json() == {"ok": True, "stored": 2, "duplicate": 1, "ignored": 0}
        clock.advance(seconds=30)
        replay = post(client, fake_sendgrid, [opened, dropped], clock)
        assert replay.get_json() == {"ok": True, "stored": 0, "duplicate": 2, "ignored": 0}
        db.session.expire_all()
        stored = db.session.get(Delivery, delivery.id)
        assert stored.open_count == 1
        assert stored.state == "failed"
        assert is_suppressed(db.session, "kim@example.com")
        assert db.session.scalar(select(func.count()).select_from(ProviderEvent)) == 2


def test_event_names_are_matched_in_any_letter_case(sendgrid_app, fake_sendgrid, clock):
    client = sendgrid_app.test_client(use_cookies=False)
    with sendgrid_app.app_context():
        delivery = sent_delivery()
        events = [event(delivery, "Delivered", "c1", clock), event(delivery, "OPEN", "c2", clock)]
        assert post(client, fake_sendgrid, events, clock).status_code == 200
        db.session.expire_all()
        stored = db.session.get(Delivery, delivery.id)
        assert (stored.state, stored.open_count) == ("delivered", 1)
        spam = event(delivery, "SpamReport", "c3", clock)
        assert post(client, fake_sendgrid, [spam], clock).status_code == 200
        assert db.session.scalars(select(Suppression)).one().reason == "spamreport"


def _seed_sent(count: int, moment) -> list[int]:
    """`count` leads with one sent email each (provider message id `m<id>`), written in bulk."""
    with db.write_transaction() as session:
        session.execute(
            insert(Lead),
            [{"id": n, "email": f"reader{n}@example.com", "first_name": "R"} for n in range(1, count + 1)],
        )
        session.execute(
            insert(Delivery),
            [
                {
                    "id": n,
                    "dedupe_key": f"seed:{n}",
                    "lead_id": n,
                    "state": "sent",
                    "provider_message_id": f"m{n}",
                    "sent_at": moment,
                }
                for n in range(1, count + 1)
            ],
        )
    return list(range(1, count + 1))


def test_a_batch_of_ten_thousand_events_is_stored_in_bulk_and_each_applied_once(sendgrid_app, fake_sendgrid, clock):
    """10,000 signed events: answered 200, every event stored and applied once, with a bounded number of queries.

    The number of statements, not the time, is asserted: one round trip per event is what made a 40,000-event
    batch outlast gunicorn's 30 s (bench/webhook.py measures the time).
    """
    client = sendgrid_app.test_client(use_cookies=False)
    kinds = ["processed", "delivered", "open", "click", "open"]
    with sendgrid_app.app_context():
        ids = _seed_sent(200, clock.now())
        events = [
            {
                "email": f"reader{ids[n % 200]}@example.com",
                "timestamp": int(clock.now().timestamp()),
                "smtp-id": f"<m{ids[n % 200]}@ismtpd-555>",
                "event": kinds[n // 200 % len(kinds)],
                "category": "stem-cell-therapy",
                "sg_event_id": f"bulk-{n}",
                "sg_message_id": f"m{ids[n % 200]}.filter0001.16648.5515E0B88.0",
                "delivery_id": str(ids[n % 200]),
            }
            for n in range(10_000)
        ]
        response, statements = post_counting_statements(client, fake_sendgrid, events, clock)
        assert response.status_code == 200
        assert response.get_json()["stored"] == 10_000
        assert len(statements) < 200, f"{len(statements)} statements for 10,000 events"
        db.session.expire_all()
        opens, clicks = db.session.execute(select(func.sum(Delivery.open_count), func.sum(Delivery.click_count))).one()
        assert (opens, clicks) == (4_000, 2_000)
        states = set(db.session.scalars(select(Delivery.state)))
        assert states == {"delivered"}
        replay = post(client, fake_sendgrid, events, clock)
        assert replay.get_json()["duplicate"] == 10_000
        db.session.expire_all()
        assert db.session.scalar(select(func.count()).select_from(ProviderEvent)) == 10_000
        assert db.session.scalar(select(func.sum(Delivery.open_count))) == 4_000


def test_sendgrids_batches_refused_as_stale_show_on_healthz_and_the_dashboard(vector_app, clock):
    """SendGrid's own signed batch from 2020 against a clock in 2026: refused, and said so where operators look."""
    from admin.users import create_user
    from tests.support.staff import login

    client = vector_app.test_client(use_cookies=False)
    with vector_app.app_context():
        assert client.get("/healthz").get_json()["sendgrid_webhook"] == {"ok": True}
        for _ in range(2):
            response = client.post(URL, data=SENDGRID_VECTOR_PAYLOAD, headers=SENDGRID_VECTOR_HEADERS)
            assert response.status_code == 403
        assert db.session.scalar(select(func.count()).select_from(ProviderEvent)) == 0
        health = client.get("/healthz")
        assert health.status_code == 503
        entry = health.get_json()["sendgrid_webhook"]
        assert entry["ok"] is False
        assert entry["refused_batches"] == 2
        skew = int(clock.now().timestamp()) - int(SENDGRID_VECTOR_TIMESTAMP)
        assert entry["clock_skew_seconds"] == skew
        assert f"arrive {skew // 86400:,} days older than this server's clock allows" in entry["note"]
        with db.write_transaction() as session:
            create_user(session, "ops@nexgenesis.example", "a long enough password", "admin")
    browser = vector_app.test_client()
    assert login(browser, "ops@nexgenesis.example", "a long enough password").status_code == 302
    page = browser.get("/admin/").get_data(as_text=True)
    assert "SendGrid&#39;s events are being refused (2 batches so far)" in page
    assert "Check the server&#39;s clock (NTP)" in page


def test_an_accepted_batch_clears_the_stale_alarm_and_unsigned_requests_never_raise_it(
    sendgrid_app, fake_sendgrid, clock
):
    client = sendgrid_app.test_client(use_cookies=False)
    with sendgrid_app.app_context():
        delivery = sent_delivery()
        body, headers = fake_sendgrid.sign([event(delivery, "open", "s1", clock)], clock.now() - timedelta(minutes=11))
        forged = {**headers, "X-Twilio-Email-Event-Webhook-Signature": "bm90IGEgc2lnbmF0dXJl"}
        assert client.post(URL, data=body, headers=forged).status_code == 403
        assert client.get("/healthz").get_json()["sendgrid_webhook"]["ok"] is True
        assert client.post(URL, data=body, headers=headers).status_code == 403
        entry = client.get("/healthz").get_json()["sendgrid_webhook"]
        assert entry["clock_skew_seconds"] == 660
        assert "arrive 11 minutes older" in entry["note"]
        assert post(client, fake_sendgrid, [event(delivery, "open", "s2", clock)], clock).status_code == 200
        assert client.get("/healthz").get_json()["sendgrid_webhook"] == {"ok": True}


def test_lone_surrogates_and_nuls_in_a_signed_batch_never_cause_a_500(sendgrid_app, fake_sendgrid, clock):
    """JSON may escape characters no database column can hold; the event is stored without them."""
    client = sendgrid_app.test_client(use_cookies=False)
    with sendgrid_app.app_context():
        delivery = sent_delivery()
        bounce = event(delivery, "bounce", "s1\udc00", clock, reason="550 no\ud800 such\x00 user", type="bounce")
        drop = event(delivery, "dropped", "s2", clock, email="x\ud800@example.com", reason="\udfff")
        body = json.dumps([bounce, drop]).encode()
        signed, headers = fake_sendgrid.sign(body, clock.now())
        response = client.post(URL, data=signed, headers=headers)
        assert response.status_code == 200
        db.session.expire_all()
        assert is_suppressed(db.session, "kim@example.com")
        assert db.session.get(Delivery, delivery.id).state == "bounced"
        assert not is_suppressed(db.session, "x@example.com")


def _seed_enrolled(count: int, moment) -> None:
    """`count` leads with an active enrollment, its sent email (message id `m<id>`) and its next email pending."""
    ids = range(1, count + 1)
    with db.write_transaction() as session:
        session.execute(insert(Lead), [{"id": n, "email": f"reader{n}@example.com", "first_name": "R"} for n in ids])
        session.execute(
            insert(Enrollment),
            [
                {
                    "id": n,
                    "lead_id": n,
                    "campaign_slug": "stem-cell-therapy",
                    "state": "active",
                    "next_step": 1,
                    "next_send_at": moment,
                }
                for n in ids
            ],
        )
        sent = {"state": "sent", "sent_at": moment, "campaign_slug": "stem-cell-therapy"}
        session.execute(
            insert(Delivery),
            [
                {
                    **sent,
                    "id": n,
                    "dedupe_key": f"s:{n}",
                    "lead_id": n,
                    "enrollment_id": n,
                    "provider_message_id": f"m{n}",
                }
                for n in ids
            ]
            + [
                {
                    "id": count + n,
                    "dedupe_key": f"next:{n}",
                    "lead_id": n,
                    "enrollment_id": n,
                    "state": "pending",
                    "due_at": moment,
                }
                for n in ids
            ],
        )


def test_ten_thousand_bounces_of_enrolled_leads_are_each_applied_once(sendgrid_app, fake_sendgrid, clock):
    """The slowest batch SendGrid can sign: 10,000 bounces, each of an enrolled lead's own address.

    Every address is suppressed, every email bounced, every enrollment ended with its next email skipped and
    every lead announced to webhooks, in a bounded number of statements; a replay changes nothing.
    """
    sendgrid_app.config.update(WEBHOOK_URLS=["https://hooks.example/leads"], WEBHOOK_SECRET="s" * 32)
    client = sendgrid_app.test_client(use_cookies=False)
    count = 10_000
    with sendgrid_app.app_context():
        _seed_enrolled(count, clock.now())
        events = [
            {
                "email": f"Reader{n}@example.com",
                "timestamp": int(clock.now().timestamp()),
                "event": "bounce",
                "type": "bounce",
                "reason": f"550 5.1.1 reader{n}@example.com: no such user",
                "sg_event_id": f"bounce-{n}",
                "sg_message_id": f"m{n}.filter0001.16648.5515E0B88.0",
                "delivery_id": str(n),
            }
            for n in range(1, count + 1)
        ]

        def outcome() -> tuple:
            db.session.expire_all()
            count_of = lambda model, *where: db.session.scalar(select(func.count()).select_from(model).where(*where))  # noqa: E731
            return (
                count_of(Suppression, Suppression.reason == "bounce", Suppression.source == "provider"),
                count_of(Delivery, Delivery.state == "bounced"),
                count_of(Delivery, Delivery.state == "skipped"),
                count_of(Enrollment, Enrollment.state == "exited", Enrollment.exit_reason == "unsubscribed:bounce"),
                count_of(WebhookEvent, WebhookEvent.event_type == "lead.unsubscribed"),
                count_of(ProviderEvent),
            )

        response, statements = post_counting_statements(client, fake_sendgrid, events, clock)
        assert response.status_code == 200
        assert response.get_json()["stored"] == count
        assert len(statements) < 400, f"{len(statements)} statements for {count:,} bounces"
        assert outcome() == (count, count, count, count, count, count)
        assert all(is_suppressed(db.session, f"reader{n}@example.com") for n in (1, 5_000, count))
        payload = json.loads(db.session.scalars(select(WebhookEvent.payload).where(WebhookEvent.lead_id == 7)).one())
        assert payload["data"]["reason"] == "bounce"
        assert "reader7" not in json.dumps(payload)
        reason = db.session.scalars(select(Suppression.detail).where(Suppression.email == "reader7@example.com")).one()
        assert reason == "550 5.1.1 [address]: no such user"

        replay = post(client, fake_sendgrid, events, clock)
        assert replay.get_json()["duplicate"] == count
        assert outcome() == (count, count, count, count, count, count)


def test_an_event_writes_only_what_it_changed_so_a_concurrent_write_of_another_column_stands(
    sendgrid_app, fake_sendgrid, clock, backend, monkeypatch
):
    if backend != "postgresql":
        pytest.skip("SQLite's write lock lets no other writer in while a batch is applied; runs on PostgreSQL")
    from mailer import webhook

    client = sendgrid_app.test_client(use_cookies=False)
    with sendgrid_app.app_context():
        delivery = sent_delivery()
        delivery_id = delivery.id
        applied = webhook._apply

        def apply_while_staff_requeues(event, loaded):
            applied(event, loaded)
            # Another process changes a column this open event does not touch, after the batch read the row.
            with db.engine.begin() as other:
                other.execute(Delivery.__table__.update().where(Delivery.id == delivery_id).values(error="staff note"))

        monkeypatch.setattr(webhook, "_apply", apply_while_staff_requeues)
        assert post(client, fake_sendgrid, [event(delivery, "open", "o1", clock)], clock).status_code == 200
        db.session.expire_all()
        stored = db.session.get(Delivery, delivery_id)
        assert (stored.open_count, stored.error) == (1, "staff note")
