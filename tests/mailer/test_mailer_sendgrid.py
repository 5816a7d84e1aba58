"""The SendGrid sender against the fake SendGrid: one valid request per step, and each error class."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest
from flask import current_app
from sqlalchemy import func, select

from core.db import db
from leads.models import INTERESTS, Lead
from mailer.base import AuthError, Message, PermanentError, TemporaryError, UncertainError, get_sender
from mailer.links import provider_campaign_id
from mailer.models import Delivery
from mailer.senders import SendGridSender
from nurture.dispatch import tick
from tests.support.factories import make_lead

HEALTH_MESSAGE = "My left ankle still swells after the 2019 fracture"
INTEREST = "ankle"


def signup(email: str = "maria@example.com", first_name: str = "Maria") -> Lead:
    """A consenting signup on the stem cell landing page, with health details the email must never carry."""
    app = current_app._get_current_object()
    answers = {"first_name": first_name, "last_name": "Lopez", "interest": INTEREST, "message": HEALTH_MESSAGE}
    lead_id = make_lead(app, email, utm_source="google", **answers)
    return db.session.get(Lead, lead_id)


def message(to: str = "someone@example.com", **changes: object) -> Message:
    fields = {
        "to": to,
        "subject": "Hello",
        "text": "Plain text body\n",
        "html": "<p>HTML body</p>",
        "from_email": "care@nexgenesis.example",
        "from_name": "NexGenEsis Healthcare",
        "reply_to": "care@nexgenesis.example",
        "headers": {"List-Id": "<test.nexgenesis.example>"},
        "categories": ["stem-cell-therapy"],
        "custom_args": {"delivery_id": "1", "campaign": "stem-cell-therapy", "step": "welcome"},
    }
    fields.update(changes)
    return Message(**fields)


def test_signup_and_tick_send_one_valid_request_without_health_details(sendgrid_app, fake_sendgrid):
    with sendgrid_app.app_context():
        lead = signup()
        tick()
        tick()  # a second pass must not send the welcome again

        requests = fake_sendgrid.snapshot()
        assert len(requests) == 1
        body = requests[0]["body"]
        delivery = db.session.scalars(select(Delivery).where(Delivery.lead_id == lead.id)).one()
        assert delivery.state == "sent"
        assert delivery.provider_message_id == requests[0]["message_id"]
        campaign_id = provider_campaign_id("stem-cell-therapy")

    assert body["personalizations"] == [{"to": [{"email": "maria@example.com"}]}]
    assert body["from"]["email"] == "care@nexgenesis.example"
    assert body["reply_to"]["email"]
    assert body["subject"]
    types = [part["type"] for part in body["content"]]
    assert types == ["text/plain", "text/html"]
    text, html = (part["value"] for part in body["content"])
    assert "Maria" in text
    assert "<html" in html
    assert "style=" in html  # CSS inlined
    headers = body["headers"]
    assert headers["List-Unsubscribe"].startswith("<https://www.nexgenesis.example/unsubscribe/")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"<{campaign_id}." in headers["List-Id"]
    token_url = headers["List-Unsubscribe"].strip("<>")
    assert token_url in text
    assert token_url in html
    assert "100 Example Ave" in text
    assert "100 Example Ave" in html
    assert body["categories"] == [campaign_id]
    assert body["custom_args"] == {"delivery_id": str(delivery.id), "campaign": campaign_id, "step": "1"}
    assert all(isinstance(v, str) for v in body["custom_args"].values())

    whole = json.dumps(requests[0]).lower()
    assert HEALTH_MESSAGE.lower() not in whole
    assert "swells" not in whole
    assert INTERESTS[INTEREST].lower() not in whole
    assert INTEREST not in json.dumps([body["custom_args"], body["categories"], headers]).lower()


def test_sender_returns_the_message_id_and_sends_the_key(sendgrid_app, fake_sendgrid):
    with sendgrid_app.app_context():
        provider_id = get_sender().send(message())
    (request,) = fake_sendgrid.snapshot()
    assert provider_id == request["message_id"]
    assert request["headers"]["User-Agent"].startswith("sendgrid/")


def test_429_is_temporary_with_the_wait_from_ratelimit_reset(sendgrid_app, fake_sendgrid):
    fake_sendgrid.set_fault(429, count=1, reset_seconds=30)
    with sendgrid_app.app_context():
        with pytest.raises(TemporaryError) as caught:
            get_sender().send(message())
        assert 25 <= caught.value.retry_after <= 31
        assert "429" in str(caught.value)
        assert get_sender().send(message())  # the fault was for one request only
    assert len(fake_sendgrid.snapshot()) == 1


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_temporary(sendgrid_app, fake_sendgrid, status):
    fake_sendgrid.set_fault(status)
    with sendgrid_app.app_context(), pytest.raises(TemporaryError) as caught:
        get_sender().send(message())
    assert str(status) in str(caught.value)
    assert fake_sendgrid.snapshot() == []


def test_a_provider_that_takes_the_request_but_never_answers_is_uncertain_not_temporary(sendgrid_app, fake_sendgrid):
    # The request went out: SendGrid may have accepted it, so a retry could send the email twice.
    fake_sendgrid.set_fault("hang", hang_seconds=5)
    sender = SendGridSender(fake_sendgrid.api_key, host=fake_sendgrid.url, timeout=0.5)
    started = time.monotonic()
    with sendgrid_app.app_context(), pytest.raises(UncertainError, match="may have sent"):
        sender.send(message())
    assert time.monotonic() - started < 3


def test_400_is_permanent_and_keeps_sendgrids_message(sendgrid_app, fake_sendgrid):
    with sendgrid_app.app_context(), pytest.raises(PermanentError) as caught:
        get_sender().send(message(subject=""))
    assert "The subject is required" in str(caught.value)
    assert "400" in str(caught.value)


def test_413_is_permanent(sendgrid_app, fake_sendgrid):
    fake_sendgrid.set_fault(413)
    with sendgrid_app.app_context(), pytest.raises(PermanentError, match="content too large"):
        get_sender().send(message())


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_auth_errors(sendgrid_app, fake_sendgrid, status):
    fake_sendgrid.set_fault(status)
    with sendgrid_app.app_context(), pytest.raises(AuthError):
        get_sender().send(message())


def test_a_wrong_api_key_is_an_auth_error(sendgrid_app, fake_sendgrid):
    sender = SendGridSender("SG.wrong", host=fake_sendgrid.url, timeout=2)
    with sendgrid_app.app_context(), pytest.raises(AuthError, match="401"):
        sender.send(message())
    assert fake_sendgrid.snapshot() == []


def test_an_unreachable_provider_is_temporary(sendgrid_app, fake_sendgrid):
    fake_sendgrid.stop()
    with sendgrid_app.app_context(), pytest.raises(TemporaryError, match=r"reach|connection"):
        get_sender().send(message())


def test_loopback_requests_ignore_proxy_settings(sendgrid_app, fake_sendgrid, monkeypatch):
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("no_proxy", "")
    with sendgrid_app.app_context():
        assert get_sender().send(message())
    assert len(fake_sendgrid.snapshot()) == 1


def test_rate_limit_through_dispatch_waits_then_sends_once(sendgrid_app, fake_sendgrid, clock):
    fake_sendgrid.set_fault(429, count=1, reset_seconds=60)
    with sendgrid_app.app_context():
        lead = signup()
        tick()
        delivery = db.session.scalars(select(Delivery).where(Delivery.lead_id == lead.id)).one()
        assert delivery.state == "retrying"
        assert fake_sendgrid.snapshot() == []
        tick()  # not yet due: the provider said wait
        assert fake_sendgrid.snapshot() == []
        clock.advance(seconds=61)
        tick()
        db.session.expire_all()
        assert db.session.get(Delivery, delivery.id).state == "sent"
    assert len(fake_sendgrid.snapshot()) == 1


def test_server_errors_through_dispatch_fail_with_the_reason_after_the_last_attempt(sendgrid_app, fake_sendgrid, clock):
    fake_sendgrid.set_fault(503)
    with sendgrid_app.app_context():
        sendgrid_app.config["NURTURE_MAX_ATTEMPTS"] = 3
        lead = signup()
        for _ in range(6):
            tick()
            clock.advance(hours=3)
        delivery = db.session.scalars(select(Delivery).where(Delivery.lead_id == lead.id)).one()
        assert delivery.state == "failed"
        assert "503" in delivery.error
    assert fake_sendgrid.snapshot() == []
    assert fake_sendgrid.attempts == 3


def test_no_answer_through_dispatch_leaves_unknown_and_never_resends(sendgrid_app, fake_sendgrid, clock):
    fake_sendgrid.set_fault("hang", count=1, hang_seconds=3)
    with sendgrid_app.app_context():
        sendgrid_app.extensions["mail_sender"] = SendGridSender(
            fake_sendgrid.api_key, host=fake_sendgrid.url, timeout=0.5
        )
        lead = signup()
        tick()
        delivery = db.session.scalars(select(Delivery).where(Delivery.lead_id == lead.id)).one()
        assert delivery.state == "unknown"
        assert "may have sent" in delivery.error
        for _ in range(3):
            clock.advance(hours=1)
            tick()
        db.session.expire_all()
        assert db.session.get(Delivery, delivery.id).state == "unknown"
    assert fake_sendgrid.attempts == 1


def test_bad_request_through_dispatch_fails_at_once_with_sendgrids_message(sendgrid_app, fake_sendgrid):
    fake_sendgrid.set_fault(400)
    with sendgrid_app.app_context():
        lead = signup()
        tick()
        delivery = db.session.scalars(select(Delivery).where(Delivery.lead_id == lead.id)).one()
        assert delivery.state == "failed"
        assert "invalid request" in delivery.error
    assert fake_sendgrid.attempts == 1


@pytest.mark.slow
def test_random_faults_over_500_sends_deliver_each_exactly_once(sendgrid_app, fake_sendgrid, clock):
    fake_sendgrid.set_random(0.3, seed=7, statuses=(500, 503, 429))
    fake_sendgrid._mode.reset_seconds = 1
    with sendgrid_app.app_context():
        sendgrid_app.config["NURTURE_MAX_ATTEMPTS"] = 50
        sendgrid_app.config["NURTURE_BATCH_SIZE"] = 500
        for n in range(500):
            signup(email=f"lead{n}@example.com", first_name=f"Lead{n}")
        for _ in range(200):
            tick()
            pending = db.session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.state.not_in(("sent", "delivered")))
            )
            db.session.commit()
            if not pending:
                break
            # Long enough for any backoff, far short of step 2 (two days later).
            clock.advance(minutes=30)
        states = dict(
            db.session.execute(
                select(Delivery.state, func.count()).where(Delivery.step_id == "welcome").group_by(Delivery.state)
            ).all()
        )
    assert states == {"sent": 500}
    welcomes = [r for r in fake_sendgrid.snapshot() if r["body"]["custom_args"]["step"] == "1"]
    recipients = [r["body"]["personalizations"][0]["to"][0]["email"] for r in welcomes]
    assert len(recipients) == 500
    assert len(set(recipients)) == 500
    assert sum(v for k, v in fake_sendgrid.answers.items() if k != "202") > 50  # faults really happened


@pytest.mark.slow
def test_the_fake_runs_as_its_own_process(app):
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.sendgrid", "--port", "0", "--api-key", "SG.process"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(process.stdout.readline())
        control = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        mode = urllib.request.Request(
            f"{info['url']}/_fake/mode", data=json.dumps({"fault": "503", "count": 1}).encode(), method="POST"
        )
        control.open(mode, timeout=5).read()
        sender = SendGridSender("SG.process", host=info["url"], timeout=2)
        with app.app_context():
            with pytest.raises(TemporaryError):
                sender.send(message())
            provider_id = sender.send(message())
        recorded = json.loads(control.open(f"{info['url']}/_fake/requests", timeout=5).read())
        assert [r["message_id"] for r in recorded] == [provider_id]
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize(
    ("slug", "step_id", "position"),
    [("stem-cell-therapy", "knee", "4"), ("prp-knee-osteoarthritis", "welcome", "1")],
)
def test_ids_sendgrid_sees_name_no_interest_or_condition(sendgrid_app, fake_sendgrid, slug, step_id, position):
    """The knee step goes only to knee leads, and the PRP campaign's slug names knee osteoarthritis: SendGrid's
    metadata (custom_args, categories, headers) and the links' UTM tags carry opaque ids instead."""
    from nurture.composers import compose_step
    from studio.registry import registry

    with sendgrid_app.app_context():
        lead = signup()
        lead.interest = "knee"
        campaign = registry().get(slug)
        step = campaign.step(step_id)
        message = compose_step(campaign, step, lead, Delivery(id=77, kind="nurture", dedupe_key="t"))
        get_sender().send(message)
        (request,) = fake_sendgrid.snapshot()
    body = request["body"]
    assert body["custom_args"]["step"] == position  # its place in the campaign, as the admin numbers it
    assert body["custom_args"]["delivery_id"] == "77"
    metadata = json.dumps([body["custom_args"], body["categories"], body["headers"]]).lower()
    for word in ("knee", "osteoarthritis", slug, step_id):
        assert word not in metadata, word
    campaign_id = body["custom_args"]["campaign"]
    assert body["categories"] == [campaign_id]
    assert f"<{campaign_id}." in body["headers"]["List-Id"]
    links = [part["value"] for part in body["content"]]
    assert "utm_content=" + step_id not in " ".join(links)
    if "/blog/" in links[0]:
        assert f"utm_content={position}" in links[0]


def test_campaign_ids_for_sendgrid_are_keyed_by_the_secret(sendgrid_app, make_config):
    """The slugs are public page addresses: a plain hash of one could be matched by anyone, a keyed one cannot."""
    from mailer.links import provider_campaign_id

    with sendgrid_app.app_context():
        first = provider_campaign_id("prp-knee-osteoarthritis")
        assert first == provider_campaign_id("prp-knee-osteoarthritis")
        assert first != provider_campaign_id("stem-cell-therapy")
        sendgrid_app.config["SECRET_KEY"] = "another-secret"
        assert provider_campaign_id("prp-knee-osteoarthritis") != first
