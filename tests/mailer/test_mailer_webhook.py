"""SendGrid's Event Webhook: signatures, staleness, replays, and what each event does to deliveries and leads."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.db import db
from leads.models import Lead
from leads.services import capture_lead
from mailer.models import ProviderEvent, Suppression
from mailer.suppression import is_suppressed
from nurture.dispatch import tick
from nurture.models import Delivery, Enrollment

URL = "/webhooks/sendgrid"


def sent_delivery(email: str = "kim@example.com") -> Delivery:
    """A signup whose welcome went out through the fake SendGrid."""
    with db.write_transaction() as session:
        capture_lead(
            session,
            {"email": email, "first_name": "Kim", "interest": "knee", "email_consent": True, "privacy_ack": True},
            {"landing_slug": "stem-cell-therapy"},
        )
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
