"""Outgoing webhooks: signed, retried with backoff, delivered at least once, never carrying health details."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from alerts_helpers import FORM, MESSAGE, SECRET, signup
from sqlalchemy import select, update

from alerts import webhooks
from alerts.models import WebhookEvent
from alerts.webhooks import sign, verify_signature
from core.db import db
from leads.models import Lead
from leads.services import change_status
from mailer.suppression import suppress
from tests.support.factories import make_user, rows
from tests.support.staff import login as staff_login


def _deliver(app, **kwargs):
    with app.app_context():
        return webhooks.deliver_due(**kwargs)


def _events(app) -> list[WebhookEvent]:
    with app.app_context():
        return sorted(rows(WebhookEvent), key=lambda e: e.id)


def _assert_signed(request, clock) -> None:
    headers = request["headers"]
    assert headers["Content-Type"] == "application/json"
    assert verify_signature(
        SECRET,
        headers["X-Webhook-Timestamp"],
        request["body"],
        headers["X-Webhook-Signature"],
        now_ts=clock.now().timestamp(),
    )


def test_verify_signature_accepts_only_the_genuine_fresh_request():
    body = b'{"id":"e1","type":"lead.created"}'
    ts = int(time.time())
    header = sign("s3cret", ts, body)
    assert header.startswith("sha256=")
    assert verify_signature("s3cret", str(ts), body, header)
    assert verify_signature("s3cret", ts, body.decode(), header)
    assert not verify_signature("other", ts, body, header)
    assert not verify_signature("s3cret", ts, body + b" ", header)
    assert not verify_signature("s3cret", ts + 1, body, header)
    assert not verify_signature("s3cret", ts, body, "sha256=" + "0" * 64)
    assert not verify_signature("s3cret", "not-a-number", body, header)
    assert not verify_signature("s3cret", ts, body, "")
    stale = ts - 301
    assert not verify_signature("s3cret", stale, body, sign("s3cret", stale, body))


def test_backoff_grows_with_jitter_and_gives_up_after_max_attempts():
    assert timedelta(seconds=24) <= webhooks.backoff(1) <= timedelta(seconds=36)
    assert timedelta(seconds=96) <= webhooks.backoff(2) <= timedelta(seconds=144)
    assert webhooks.backoff(20) <= timedelta(hours=6 * 1.2)
    assert webhooks.MAX_ATTEMPTS == 8


def test_signup_reaches_every_receiver_signed_and_without_health_details(make_app, receiver, clock):
    app = make_app(WEBHOOK_URLS=[receiver.url, receiver.url + "?copy=2"], WEBHOOK_SECRET=SECRET)
    signup(app.test_client(), "?utm_source=google")
    events = _events(app)
    assert [e.state for e in events] == ["pending", "pending"]
    assert events[0].event_id == events[1].event_id  # one event, one id, two receivers

    counts = _deliver(app)
    assert counts["webhooks_delivered"] == 2
    assert len(receiver.requests) == 2
    lead_id = _events(app)[0].lead_id
    for request in receiver.requests:
        _assert_signed(request, clock)
        assert request["headers"]["X-Webhook-Id"] == events[0].event_id
        body = json.loads(request["body"])
        assert body["id"] == events[0].event_id
        assert body["type"] == "lead.created"
        assert body["created_at"] == "2026-11-23T16:00:00Z"
        assert body["data"]["lead_id"] == lead_id
        assert body["data"]["status"] == "new"
        assert body["data"]["source"] == "google"
        assert body["data"]["landing_page"] == "stem-cell-therapy"
        assert body["data"]["admin_url"].endswith(f"/admin/leads/{lead_id}")
        raw = request["body"].decode()
        for secret in (MESSAGE, "knee", "Knee", FORM["email"], "Dana", "Whitfield", "5550123", "555-0123", "phone"):
            assert secret not in raw, secret
    assert {e.state for e in _events(app)} == {"delivered"}
    assert _deliver(app)["webhooks_delivered"] == 0  # nothing is sent twice
    assert len(receiver.requests) == 2


def test_500s_are_retried_with_backoff_then_delivered_with_the_same_event_id(make_app, receiver, clock):
    app = make_app(WEBHOOK_URLS=[receiver.url], WEBHOOK_SECRET=SECRET)
    signup(app.test_client())
    receiver.statuses = [500, 503]

    assert _deliver(app)["webhooks_retrying"] == 1
    [event] = _events(app)
    assert (event.state, event.attempts) == ("pending", 1)
    assert event.last_error.startswith("HTTP 500")
    wait = event.next_attempt_at - clock.now()
    assert timedelta(seconds=24) <= wait <= timedelta(seconds=36)

    assert _deliver(app) == {"webhooks_delivered": 0, "webhooks_retrying": 0, "webhooks_failed": 0}  # not yet due
    clock.advance(seconds=37)
    _deliver(app)
    [event] = _events(app)
    assert (event.state, event.attempts) == ("pending", 2)
    assert timedelta(seconds=96) <= event.next_attempt_at - clock.now() <= timedelta(seconds=144)

    clock.advance(minutes=3)
    assert _deliver(app)["webhooks_delivered"] == 1
    [event] = _events(app)
    assert (event.state, event.attempts, event.last_error) == ("delivered", 3, None)
    assert len(receiver.requests) == 3
    assert len({r["headers"]["X-Webhook-Id"] for r in receiver.requests}) == 1
    assert len({r["body"] for r in receiver.requests}) == 1
    for request in receiver.requests:
        _assert_signed(request, clock)


def test_an_event_failing_every_attempt_is_marked_failed_shown_in_admin_and_can_be_retried(make_app, receiver, clock):
    app = make_app(WEBHOOK_URLS=[receiver.url + "?token=chat-secret"], WEBHOOK_SECRET=SECRET)
    signup(app.test_client())
    receiver.statuses = [500] * webhooks.MAX_ATTEMPTS
    for _ in range(webhooks.MAX_ATTEMPTS):
        _deliver(app)
        clock.advance(hours=8)
    [event] = _events(app)
    assert (event.state, event.attempts) == ("failed", webhooks.MAX_ATTEMPTS)
    assert event.last_error == "HTTP 500: receiver says no"
    clock.advance(days=2)
    assert _deliver(app)["webhooks_delivered"] == 0

    client = app.test_client()
    staff_login(client, make_user(app, "staff@clinic.example", role="marketer"))
    page = client.get("/admin/webhooks/?state=failed")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "HTTP 500: receiver says no" in html
    assert "chat-secret" not in html  # a receiver URL's secret path or query stays out of the page
    assert "Retry now" in html
    token = html.split('name="csrf_token" value="')[1].split('"')[0]

    assert client.post(f"/admin/webhooks/{event.id}/retry").status_code == 400  # no CSRF token, no retry
    assert _events(app)[0].state == "failed"
    response = client.post(f"/admin/webhooks/{event.id}/retry", data={"csrf_token": token})
    assert response.status_code == 302
    assert _events(app)[0].state == "pending"
    assert _deliver(app)["webhooks_delivered"] == 1
    assert _events(app)[0].state == "delivered"


def test_admin_webhooks_page_needs_login(make_app):
    app = make_app()
    client = app.test_client()
    response = client.get("/admin/webhooks/")
    assert response.status_code in (302, 401)
    if response.status_code == 302:
        assert "/admin/login" in response.headers["Location"]
    assert client.post("/admin/webhooks/retry-failed").status_code in (302, 400, 401)
    with app.app_context():
        assert rows(WebhookEvent) == []


def test_admin_webhooks_page_refuses_an_unknown_state(make_app):
    app = make_app()
    client = app.test_client()
    staff_login(client, make_user(app, "staff@clinic.example", role="marketer"))
    assert client.get("/admin/webhooks/?state=bogus").status_code == 400
    assert client.get("/admin/webhooks/").status_code == 200


def test_status_change_and_unsubscribe_are_announced(make_app, receiver):
    app = make_app(WEBHOOK_URLS=[receiver.url], WEBHOOK_SECRET=SECRET)
    signup(app.test_client())
    with app.app_context(), db.write_transaction() as session:
        lead = session.scalar(select(Lead))
        change_status(session, lead, "booked", source="api")
    with app.app_context(), db.write_transaction() as session:
        suppress(session, FORM["email"], "unsubscribe", "one_click")
    _deliver(app)
    bodies = receiver.bodies()
    assert [b["type"] for b in bodies] == ["lead.created", "lead.status_changed", "lead.unsubscribed"]
    assert bodies[1]["data"]["status"] == "booked"
    assert bodies[1]["data"]["previous_status"] == "new"
    assert bodies[1]["data"]["changed_via"] == "api"
    assert bodies[2]["data"]["reason"] == "unsubscribe"
    assert len({b["id"] for b in bodies}) == 3
    assert all(FORM["email"] not in r["body"].decode() for r in receiver.requests)


def test_no_webhook_urls_records_and_sends_nothing(make_app, receiver):
    app = make_app(WEBHOOK_URLS=[])
    signup(app.test_client())
    assert _events(app) == []
    _deliver(app)
    assert receiver.requests == []


def test_a_hanging_receiver_times_out_and_is_retried(make_app, receiver):
    app = make_app(WEBHOOK_URLS=[receiver.url], WEBHOOK_SECRET=SECRET)
    signup(app.test_client())
    receiver.hang = threading.Event()
    started = time.monotonic()
    _deliver(app, timeout=0.5)
    assert time.monotonic() - started < 4
    receiver.hang.set()
    [event] = _events(app)
    assert (event.state, event.last_error) == ("pending", "timeout after 0.5 s")


def test_a_send_cut_short_by_a_dead_worker_is_delivered_again_after_the_lease(make_app, receiver, clock):
    app = make_app(WEBHOOK_URLS=[receiver.url], WEBHOOK_SECRET=SECRET)
    signup(app.test_client())
    with app.app_context(), db.write_transaction() as session:
        # A worker claimed the event and died before recording the answer.
        session.execute(
            update(WebhookEvent).values(state="sending", attempts=1, lease_until=clock.now() + timedelta(seconds=60))
        )
    assert _deliver(app)["webhooks_delivered"] == 0  # its lease still holds
    clock.advance(seconds=61)
    assert _deliver(app)["webhooks_delivered"] == 1
    [event] = _events(app)
    assert (event.state, event.attempts) == ("delivered", 2)


def test_two_workers_in_parallel_send_each_event_once(make_app, receiver):
    app = make_app(WEBHOOK_URLS=[receiver.url, receiver.url + "?b"], WEBHOOK_SECRET=SECRET)
    client = app.test_client()
    for n in range(5):
        signup(client, email=f"person{n}@example.com")
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait(5)
            _deliver(app)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(receiver.requests) == 10
    assert len({(r["headers"]["X-Webhook-Id"], r["path"]) for r in receiver.requests}) == 10
    assert {e.state for e in _events(app)} == {"delivered"}


@pytest.mark.parametrize("bad", ["ftp://example.com/x", "not a url"])
def test_bad_webhook_config_stops_the_app_with_the_variable_named(make_app, bad):
    from config import ConfigError

    with pytest.raises(ConfigError, match="WEBHOOK_URLS"):
        make_app(WEBHOOK_URLS=[bad], WEBHOOK_SECRET=SECRET)
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET"):
        make_app(WEBHOOK_URLS=["https://crm.example/hook"], WEBHOOK_SECRET="")
