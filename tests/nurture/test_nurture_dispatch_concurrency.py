"""Pipelined sending (NURTURE_CONCURRENCY): several calls in flight, the guarantee and the stops unchanged."""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import insert

from core.clock import now
from core.db import db
from mailer.base import TemporaryError
from mailer.models import Suppression, email_hash
from tests.fakes.senders import RecordingSender, run_tick, use_sender
from tests.support import factories
from tests.support.factories import deliveries, enrollment_of


def _leads(app, count: int) -> list[str]:
    emails = [f"lead{n:02d}@example.org" for n in range(count)]
    for email in emails:
        factories.make_lead(app, email)
    return emails


def _accepted_recipients(fake) -> Counter:
    return Counter(
        to["email"] for request in fake.snapshot() for p in request["body"]["personalizations"] for to in p["to"]
    )


def test_due_welcomes_are_sent_several_at_a_time_through_the_real_client(sendgrid_app, fake_sendgrid):
    fake_sendgrid.set_delay(0.2)
    emails = _leads(sendgrid_app, 16)
    counts = run_tick(sendgrid_app)
    assert counts["sent"] == 16
    assert _accepted_recipients(fake_sendgrid) == Counter(emails)
    # The provider had more than one of our requests at once, never more than the setting allows.
    assert 1 < fake_sendgrid.max_in_flight <= sendgrid_app.config["NURTURE_CONCURRENCY"] == 8
    assert {d.state for d in deliveries(sendgrid_app)} == {"sent"}
    assert all(d.provider_message_id for d in deliveries(sendgrid_app))


def test_concurrency_one_sends_one_at_a_time(sendgrid_app, fake_sendgrid):
    sendgrid_app.config["NURTURE_CONCURRENCY"] = 1
    fake_sendgrid.set_delay(0.1)
    emails = _leads(sendgrid_app, 4)
    run_tick(sendgrid_app)
    assert _accepted_recipients(fake_sendgrid) == Counter(emails)
    assert fake_sendgrid.max_in_flight == 1
    assert {d.state for d in deliveries(sendgrid_app)} == {"sent"}


class RateLimitedOnce(RecordingSender):
    """The first call of the tick is refused with a 429 once `together` calls are out at the same time."""

    def __init__(self, together: int) -> None:
        super().__init__()
        self.calls = 0
        self.together = threading.Barrier(together)
        self.count_lock = threading.Lock()

    def send(self, message):
        with self.count_lock:
            self.calls += 1
            position = self.calls
        if position <= self.together.parties:
            self.together.wait(timeout=10)  # breaks (and the send becomes unknown) unless they really overlap
        if position == 1:
            raise TemporaryError("SendGrid rate limit (429): slow down", retry_after=30, rate_limited=True)
        return super().send(message)


def test_rate_limit_starts_no_new_call_and_keeps_the_answers_already_out(app, clock):
    app.config["NURTURE_CONCURRENCY"] = 4
    emails = _leads(app, 12)
    sender = use_sender(app, RateLimitedOnce(4))
    run_tick(app)
    states = Counter(d.state for d in deliveries(app))
    # Four calls were out together; the 429 stopped the tick before most of the batch was started.
    assert 4 <= sender.calls < 12
    assert states == {"retrying": 1, "sent": sender.calls - 1, "pending": 12 - sender.calls}
    assert all(d.lease_owner is None for d in deliveries(app) if d.state == "pending")
    clock.advance(seconds=31)
    run_tick(app)
    assert {d.state for d in deliveries(app)} == {"sent"}
    assert sorted(m.to for m in sender.messages) == sorted(emails)


class BouncingOthersOnce(RecordingSender):
    """While the first two emails are out, every other address bounces (a webhook from another process)."""

    def __init__(self, emails: list[str]) -> None:
        super().__init__()
        self.emails = emails
        self.bounced = threading.Event()
        self.first = threading.Lock()

    def send(self, message):
        if self.first.acquire(blocking=False):
            with db.engine.begin() as conn:
                for address in self.emails:
                    if address != message.to:
                        values = {"email": address, "email_hash": email_hash(address), "reason": "bounce"}
                        conn.execute(insert(Suppression).values(source="provider", created_at=now(), **values))
            self.bounced.set()
        # The other call out answers after the bounce is stored, so no slot frees before it.
        assert self.bounced.wait(timeout=10)
        return super().send(message)


def test_suppression_arriving_mid_run_stops_every_email_not_yet_started(app):
    app.config["NURTURE_CONCURRENCY"] = 2
    emails = [f"lead{n:02d}@example.org" for n in range(5)]
    leads = {email: factories.make_lead(app, email) for email in emails}
    sender = use_sender(app, BouncingOthersOnce(emails))
    run_tick(app)
    # The two started together had passed their re-check; every later one is refused by its own.
    assert len(sender.messages) == 2
    states = Counter((d.state, d.error or "") for d in deliveries(app))
    assert states == {("sent", ""): 2, ("skipped", "suppressed:bounce"): 3}
    sent_to = {m.to for m in sender.messages}
    for email, lead_id in leads.items():
        if email not in sent_to:
            assert enrollment_of(app, lead_id).exit_reason == "suppressed:bounce"


class Crash(BaseException):
    """The worker process dies while the provider has emails of the batch."""


class Crashing:
    def __init__(self) -> None:
        self.recipients: list[str] = []
        self.lock = threading.Lock()

    def send(self, message):
        with self.lock:
            self.recipients.append(message.to)
        raise Crash


def test_worker_dying_mid_run_leaves_only_the_emails_in_flight_unknown(app, clock):
    app.config["NURTURE_CONCURRENCY"] = 4
    emails = _leads(app, 10)
    crashing = use_sender(app, Crashing())
    try:
        run_tick(app, "dies")
    except Crash:
        pass
    else:
        raise AssertionError("the sender's crash did not stop the tick")
    in_flight = set(crashing.recipients)
    assert 1 <= len(in_flight) <= 4
    by_state = Counter(d.state for d in deliveries(app))
    assert by_state == {"sending": len(in_flight), "pending": 10 - len(in_flight)}
    sender = use_sender(app, RecordingSender())
    clock.advance(seconds=app.config["NURTURE_LEASE_SECONDS"] + 1)
    for _ in range(3):
        run_tick(app)
    assert Counter(d.state for d in deliveries(app)) == {"unknown": len(in_flight), "sent": 10 - len(in_flight)}
    # The ones never handed to the provider went out once each; those in flight were not resent.
    assert sorted(m.to for m in sender.messages) == sorted(set(emails) - in_flight)
