"""A batch recorded at once, sent one by one (NURTURE_CONCURRENCY=1): the re-check before each send, a worker dying."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from core.clock import now
from core.db import db
from mailer.models import Suppression, email_hash
from tests.fakes.senders import RecordingSender, run_tick, use_sender
from tests.support import factories
from tests.support.factories import deliveries, enrollment_of

EMAILS = ("ana@example.org", "ben@example.org", "cai@example.org")


class Crash(BaseException):
    """The worker process dies while the provider has the first email of the batch."""


class Crashing:
    def __init__(self) -> None:
        self.recipients: list[str] = []

    def send(self, message):
        self.recipients.append(message.to)
        raise Crash


class BouncingOthers(RecordingSender):
    """While the first email of the batch is out, the other addresses bounce (a webhook from another process)."""

    def send(self, message):
        if not self.messages:
            with db.engine.begin() as conn:
                for address in EMAILS:
                    if address != message.to:
                        values = {"email": address, "email_hash": email_hash(address), "reason": "bounce"}
                        conn.execute(insert(Suppression).values(source="provider", created_at=now(), **values))
        return super().send(message)


def test_suppression_arriving_mid_batch_stops_the_rest_of_the_batch(app):
    app.config["NURTURE_CONCURRENCY"] = 1  # one call at a time (the pipelined case: test_nurture_dispatch_concurrency)
    leads = {email: factories.make_lead(app, email) for email in EMAILS}
    sender = use_sender(app, BouncingOthers())
    run_tick(app)
    [sent] = sender.messages
    for email, lead_id in leads.items():
        if email != sent.to:
            assert enrollment_of(app, lead_id).exit_reason == "suppressed:bounce"
    states = sorted((d.state, d.error or "") for d in deliveries(app))
    assert states == [("sent", ""), ("skipped", "suppressed:bounce"), ("skipped", "suppressed:bounce")]
    run_tick(app)
    assert len(sender.messages) == 1


def test_worker_dying_mid_batch_leaves_only_the_email_in_flight_unknown(app, clock):
    app.config["NURTURE_CONCURRENCY"] = 1  # one call at a time (the pipelined case: test_nurture_dispatch_concurrency)
    for email in EMAILS:
        factories.make_lead(app, email)
    crashing = use_sender(app, Crashing())
    with pytest.raises(Crash):
        run_tick(app, "dies")
    [in_flight] = crashing.recipients
    assert sorted(d.state for d in deliveries(app)) == ["pending", "pending", "sending"]
    sender = use_sender(app, RecordingSender())
    run_tick(app)
    assert sender.messages == []  # still the dead worker's until its lease ends
    clock.advance(seconds=app.config["NURTURE_LEASE_SECONDS"] + 1)
    for _ in range(3):
        run_tick(app)
    assert sorted(d.state for d in deliveries(app)) == ["sent", "sent", "unknown"]
    # The two never handed to the provider went out once each; the one in flight was not resent.
    assert sorted(m.to for m in sender.messages) == sorted(set(EMAILS) - {in_flight})
