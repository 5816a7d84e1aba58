"""A setting can never burn a delivery: the worker refuses to start without it, and sending pauses if it is still
wrong at send time (nothing failed, everything stays due, one action resumes)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

import nurture.scheduler
from core.db import db
from mailer.ledger import resume_provider
from mailer.models import Delivery
from tests.fakes.senders import RecordingSender, run_tick, use_sender
from tests.support import factories
from tests.support.factories import deliveries

POSTAL = "NexGenEsis Healthcare, 100 Example Ave, Denver, CO 80202, USA"


@pytest.fixture
def never_run(monkeypatch):
    """The worker loop itself: a refused start must never reach it."""
    started = []
    monkeypatch.setattr(nurture.scheduler, "run_worker", lambda app: started.append(app))
    return started


@pytest.mark.parametrize("command", ["run", "tick"])
def test_worker_start_is_refused_with_one_line_naming_the_missing_postal_address(app, runner, never_run, command):
    sender = use_sender(app, RecordingSender())
    factories.make_lead(app)
    app.config["CLINIC_POSTAL_ADDRESS"] = "  "
    result = runner.invoke(args=["nurture", command])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("CLINIC_POSTAL_ADDRESS: is not set: every marketing email must show")
    assert len(lines) == 2  # the problem, then what to do
    assert never_run == []
    assert sender.messages == []
    assert deliveries(app) == []  # nothing recorded, nothing failed: the welcome is still due


def test_worker_start_with_sendgrid_names_each_missing_setting_on_its_own_line(app, runner, never_run):
    app.config.update(
        MAIL_BACKEND="sendgrid", SENDGRID_API_KEY="", SITE_URL="http://clinic.example", CLINIC_POSTAL_ADDRESS=""
    )
    result = runner.invoke(args=["nurture", "run"])
    assert result.exit_code == 1
    problems = [line.split(":")[0] for line in result.output.strip().splitlines()[:-1]]
    assert problems == ["CLINIC_POSTAL_ADDRESS", "SENDGRID_API_KEY", "SITE_URL"]
    assert "must start with https://" in result.output
    assert never_run == []


def test_worker_starts_when_every_setting_is_there(app, runner, never_run):
    app.config.update(MAIL_BACKEND="sendgrid", SENDGRID_API_KEY="SG.key", SITE_URL="https://clinic.example")
    result = runner.invoke(args=["nurture", "run"])
    assert result.exit_code == 0, result.output
    assert len(never_run) == 1


def failed_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).where(Delivery.state == "failed"))


def test_a_setting_missing_at_send_time_pauses_sending_and_after_fix_and_resume_each_lead_gets_one_welcome(
    app, client, clock
):
    sender = use_sender(app, RecordingSender())
    leads = ["one@example.org", "two@example.org", "three@example.org"]
    for email in leads:
        factories.make_lead(app, email)
    app.config["CLINIC_POSTAL_ADDRESS"] = ""  # a worker started without the check (or the setting vanished)
    counts = run_tick(app)
    assert counts.get("provider_paused") == 1
    assert sender.messages == []
    assert failed_count(app) == 0
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json["provider"]["setting"] == "CLINIC_POSTAL_ADDRESS"
    clock.advance(minutes=10)
    run_tick(app)  # still paused: nothing leaves, nothing fails
    assert sender.messages == []
    assert failed_count(app) == 0

    app.config["CLINIC_POSTAL_ADDRESS"] = POSTAL
    assert run_tick(app).get("provider_paused") == 1  # fixing the setting is not enough: someone resumes
    with app.app_context():
        assert resume_provider() is True
    run_tick(app)
    run_tick(app)
    assert sorted(to for to, step in sender.steps()) == sorted(leads)
    assert set(sender.steps().values()) == {1}
    assert {d.state for d in deliveries(app)} == {"sent"}
    assert client.get("/healthz").json["provider"]["paused"] is False


def test_a_setting_that_fails_while_composing_pauses_and_leaves_the_recorded_steps_due(app, monkeypatch, clock):
    """The compose-time safety net: the worker's own check did not see it, the composer does."""
    import nurture.dispatch

    sender = use_sender(app, RecordingSender())
    for n in range(3):
        factories.make_lead(app, f"lead{n}@example.org")
    monkeypatch.setattr(nurture.dispatch, "setting_problems", lambda config: [])
    app.config["CLINIC_POSTAL_ADDRESS"] = ""
    counts = run_tick(app)
    assert counts.get("provider_paused") is None
    assert counts["setting_error"] == 1
    rows = deliveries(app)
    assert len(rows) == 3
    assert {(d.state, d.attempts, d.lease_owner) for d in rows} == {("pending", 0, None)}
    assert sender.messages == []
    with app.app_context():
        assert resume_provider() is True
    app.config["CLINIC_POSTAL_ADDRESS"] = POSTAL
    run_tick(app)
    run_tick(app)
    assert len(sender.messages) == 3
    assert set(sender.steps().values()) == {1}


def test_a_queued_email_whose_setting_fails_stays_due_and_is_not_failed(app, monkeypatch):
    import nurture.dispatch
    from admin.services import queue_test_send

    sender = use_sender(app, RecordingSender())
    monkeypatch.setattr(nurture.dispatch, "setting_problems", lambda config: [])
    app.config["CLINIC_POSTAL_ADDRESS"] = ""
    with app.app_context(), db.write_transaction() as session:
        queue_test_send(session, "stem-cell-therapy", "welcome", SimpleNamespace(email="mia@nexgenesis.example"))
    run_tick(app)
    [delivery] = deliveries(app)
    assert (delivery.kind, delivery.state, delivery.attempts) == ("test", "pending", 0)
    with app.app_context():
        resume_provider()
    app.config["CLINIC_POSTAL_ADDRESS"] = POSTAL
    run_tick(app)
    assert [m.subject for m in sender.messages] == ["[Test] We got your consultation request"]
