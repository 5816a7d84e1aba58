"""The worker with a controlled clock: each step once, at the right time, and nothing after an exit."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.db import db
from leads.models import Lead
from leads.services import change_status
from mailer.base import AuthError, PermanentError, TemporaryError
from mailer.ledger import resume_provider
from mailer.models import Delivery, Suppression, email_hash
from nurture.dispatch import tick
from nurture.models import CampaignState, WorkerHeartbeat
from tests.fakes.senders import FlakySender, RecordingSender, run_tick, use_sender
from tests.support import factories
from tests.support.factories import deliveries, enrollment_of


@pytest.fixture
def sender(app):
    return use_sender(app, RecordingSender())


def test_signup_gets_the_welcome_once(app, sender):
    lead_id = factories.make_lead(app)
    run_tick(app)
    run_tick(app)
    assert sender.steps() == {("ana@example.org", "welcome"): 1}
    message = sender.messages[0]
    assert message.subject == "We got your consultation request"
    # Health details never reach the provider.
    everything = " ".join([message.subject, message.text, message.html, json.dumps(message.custom_args)])
    assert "knee" not in everything.lower()
    assert "stairs" not in everything
    assert set(message.custom_args) <= {"delivery_id", "campaign", "step", "kind", "lead_id"}
    [delivery] = deliveries(app)
    assert (delivery.state, delivery.provider_message_id, delivery.step_id) == ("sent", "msg-1", "welcome")
    enrollment = enrollment_of(app, lead_id)
    assert enrollment.next_step == 1
    assert enrollment.next_send_at is not None


def test_no_consent_no_email(app, sender):
    lead_id = factories.make_lead(app, consent=False)
    run_tick(app)
    assert sender.messages == []
    assert enrollment_of(app, lead_id) is None


def test_repeat_signup_neither_restarts_nor_duplicates(app, sender, clock):
    lead_id = factories.make_lead(app)
    run_tick(app)
    clock.advance(hours=1)
    factories.make_lead(app)
    run_tick(app)
    assert sender.steps() == {("ana@example.org", "welcome"): 1}
    assert enrollment_of(app, lead_id).next_step == 1


def test_step_two_two_days_later_once(app, sender, clock):
    factories.make_lead(app)
    run_tick(app)
    clock.advance(days=1, hours=23)
    run_tick(app)
    assert len(sender.messages) == 1
    clock.advance(hours=1)
    run_tick(app)
    run_tick(app)
    assert sender.steps()[("ana@example.org", "the-science")] == 1
    assert len(sender.messages) == 2


def test_booked_lead_gets_nothing_more(app, sender, clock):
    lead_id = factories.make_lead(app)
    run_tick(app)
    with app.app_context(), db.write_transaction() as session:
        change_status(session, session.get(Lead, lead_id), "booked", source="admin")
    enrollment = enrollment_of(app, lead_id)
    assert (enrollment.state, enrollment.exit_reason, enrollment.next_send_at) == ("exited", "status:booked", None)
    for _ in range(12):
        clock.advance(days=1)
        run_tick(app)
    assert len(sender.messages) == 1


def test_status_changed_without_the_signal_is_still_caught_before_sending(app, sender, clock):
    lead_id = factories.make_lead(app)
    run_tick(app)
    with app.app_context(), db.write_transaction() as session:
        session.get(Lead, lead_id).status = "patient"
    clock.advance(days=2)
    counts = run_tick(app)
    assert counts.get("exited") == 1
    assert len(sender.messages) == 1
    assert enrollment_of(app, lead_id).exit_reason == "status:patient"


def test_unsubscribed_lead_gets_nothing_more(app, sender, clock):
    from mailer.suppression import suppress

    lead_id = factories.make_lead(app)
    run_tick(app)
    with app.app_context(), db.write_transaction() as session:
        suppress(session, "ana@example.org", "unsubscribe", "one_click", lead=session.get(Lead, lead_id))
    assert enrollment_of(app, lead_id).state == "exited"
    for _ in range(12):
        clock.advance(days=1)
        run_tick(app)
    assert len(sender.messages) == 1


def test_suppressed_address_is_checked_before_every_send(app, sender, clock):
    lead_id = factories.make_lead(app)
    run_tick(app)
    with app.app_context(), db.write_transaction() as session:
        h = email_hash("ana@example.org")
        session.add(Suppression(email="ana@example.org", email_hash=h, reason="bounce", source="provider"))
    clock.advance(days=2)
    run_tick(app)
    assert len(sender.messages) == 1
    assert enrollment_of(app, lead_id).exit_reason == "suppressed:bounce"


def test_interest_condition_records_a_skip_with_its_reason(app, sender, clock):
    factories.make_lead(app, "kim@example.org", interest="knee")
    factories.make_lead(app, "lee@example.org", interest="hip")
    for _ in range(16):
        run_tick(app)
        clock.advance(days=1)
    steps = sender.steps()
    assert steps[("kim@example.org", "knee")] == 1
    assert ("lee@example.org", "knee") not in steps
    for address in ("kim@example.org", "lee@example.org"):
        assert [s for (to, s) in steps if to == address] == (
            ["welcome", "the-science", "compared", "knee", "book"]
            if address.startswith("kim")
            else ["welcome", "the-science", "compared", "book"]
        )
    skipped = [d for d in deliveries(app) if d.state == "skipped"]
    assert [(d.step_id, d.error) for d in skipped] == [("knee", "condition: area of interest not listed")]
    assert all(e.state == "completed" for e in [enrollment_of(app, d.lead_id) for d in skipped])


def test_paused_campaign_waits_then_resumes(app, sender):
    factories.make_lead(app)
    with app.app_context(), db.write_transaction() as session:
        session.add(CampaignState(slug="stem-cell-therapy", paused=True))
    run_tick(app)
    assert sender.messages == []
    with app.app_context(), db.write_transaction() as session:
        session.get(CampaignState, "stem-cell-therapy").paused = False
    run_tick(app)
    assert len(sender.messages) == 1


def test_temporary_error_retries_later_and_sends_once(app, clock):
    sender = use_sender(app, FlakySender(TemporaryError("SendGrid error 503: busy", retry_after=60)))
    factories.make_lead(app)
    run_tick(app)
    [delivery] = deliveries(app)
    assert (delivery.state, delivery.attempts) == ("retrying", 1)
    assert delivery.due_at == clock.now() + timedelta(seconds=60)
    run_tick(app)
    assert sender.messages == []
    clock.advance(seconds=61)
    run_tick(app)
    [delivery] = deliveries(app)
    assert (delivery.state, delivery.attempts) == ("sent", 2)
    assert sender.steps() == {("ana@example.org", "welcome"): 1}


def test_gives_up_after_max_attempts_with_the_reason(app, clock):
    app.config["NURTURE_MAX_ATTEMPTS"] = 2
    use_sender(app, FlakySender(*[TemporaryError("SendGrid error 500: oops")] * 5))
    factories.make_lead(app)
    for _ in range(4):
        run_tick(app)
        clock.advance(hours=3)
    [delivery] = deliveries(app)
    assert delivery.state == "failed"
    assert "gave up after 2 attempts" in delivery.error
    assert "500" in delivery.error


def test_rate_limit_stops_the_tick(app, clock):
    app.config["NURTURE_CONCURRENCY"] = 1  # one call at a time (the pipelined case: test_nurture_dispatch_concurrency)
    sender = use_sender(
        app, FlakySender(TemporaryError("SendGrid rate limit (429): slow down", retry_after=30, rate_limited=True))
    )
    factories.make_lead(app, "one@example.org")
    factories.make_lead(app, "two@example.org")
    run_tick(app)
    assert sender.calls == 1
    clock.advance(seconds=31)
    run_tick(app)
    assert len(sender.messages) == 2


def test_permanent_error_fails_with_the_providers_message(app):
    use_sender(app, FlakySender(PermanentError("SendGrid refused the message (400): invalid email")))
    factories.make_lead(app)
    run_tick(app)
    run_tick(app)
    [delivery] = deliveries(app)
    assert delivery.state == "failed"
    assert delivery.error == "SendGrid refused the message (400): invalid email"


def test_auth_error_pauses_all_sending_until_resumed(app, client, clock):
    sender = use_sender(app, FlakySender(AuthError("SendGrid refused the API key (401): bad key")))
    factories.make_lead(app, "one@example.org")
    run_tick(app)
    [delivery] = deliveries(app)
    assert (delivery.state, delivery.attempts) == ("retrying", 0)
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json["provider"]["paused"] is True
    assert "401" in health.json["provider"]["reason"]
    factories.make_lead(app, "two@example.org")
    clock.advance(minutes=5)
    assert run_tick(app).get("provider_paused") == 1
    assert sender.calls == 1
    with app.app_context():
        assert resume_provider() is True
    run_tick(app)
    assert sorted(m.to for m in sender.messages) == ["one@example.org", "two@example.org"]
    assert {d.state for d in deliveries(app)} == {"sent"}


class Crash(BaseException):
    """The process dies between the claim and the provider's answer."""


class CrashingSender:
    def send(self, message):
        raise Crash


def test_crash_after_claim_leaves_unknown_and_never_resends(app, clock):
    lead_id = factories.make_lead(app)
    use_sender(app, CrashingSender())
    with pytest.raises(Crash):
        run_tick(app)
    [delivery] = deliveries(app)
    assert delivery.state == "sending"
    sender = use_sender(app, RecordingSender())
    run_tick(app)
    assert sender.messages == []  # the lease has not expired: nobody touches it
    clock.advance(seconds=app.config["NURTURE_LEASE_SECONDS"] + 1)
    counts = run_tick(app)
    [delivery] = deliveries(app)
    assert counts.get("unknown") == 1
    assert delivery.state == "unknown"
    assert "provider" in delivery.error
    for _ in range(3):
        run_tick(app)
    assert sender.messages == []
    assert enrollment_of(app, lead_id).next_step == 1  # the sequence goes on with the next step


def test_two_ticks_in_parallel_threads_send_each_step_once(app, clock):
    sender = use_sender(app, RecordingSender())
    app.config["NURTURE_BATCH_SIZE"] = 3
    for n in range(12):
        factories.make_lead(app, f"lead{n}@example.org")

    def both() -> None:
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def worker(name: str) -> None:
            try:
                barrier.wait()
                run_tick(app, name)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []

    both()
    clock.advance(days=2)
    both()
    steps = sender.steps()
    assert len(steps) == 24
    assert set(steps.values()) == {1}


def test_tick_writes_a_heartbeat_and_health_reports_a_stale_worker(app, client, clock):
    use_sender(app, RecordingSender())
    assert client.get("/healthz").json["worker"] == {"ok": True, "seen": False}
    run_tick(app, "worker-a")
    with app.app_context():
        beat = db.session.get(WorkerHeartbeat, "worker-a")
        assert beat.beat_at == clock.now()
    assert client.get("/healthz").json["worker"]["ok"] is True
    clock.advance(minutes=5)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["worker"]["ok"] is False


def test_tick_tasks_run_isolated(app):
    use_sender(app, RecordingSender())
    calls = []

    def broken():
        raise RuntimeError("boom")

    app.extensions["tick_tasks"] = [broken, lambda: calls.append("ran")]
    counts = run_tick(app)
    assert calls == ["ran"]
    assert counts["task_errors"] == 1


def test_cli_tick_prints_counts(app, runner):
    use_sender(app, RecordingSender())
    factories.make_lead(app)
    result = runner.invoke(args=["nurture", "tick"])
    assert result.exit_code == 0, result.output
    assert "sent=1" in result.output


def test_nothing_due_costs_no_sends(app):
    sender = use_sender(app, RecordingSender())
    with app.app_context():
        assert tick("idle").get("sent", 0) == 0
        assert db.session.scalar(select(Delivery.id)) is None
    assert sender.messages == []
