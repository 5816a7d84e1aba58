"""Composing is not sending: an email that cannot be built fails with a reason a marketer can act on, never
`unknown`; the lead's sequence waits for it, and queueing it again after the fix sends it once."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from admin.services import requeue
from core.db import db
from mailer.models import Delivery
from tests.fakes.senders import RecordingSender, run_tick, use_sender
from tests.support import factories
from tests.support.content import CAMPAIGNS
from tests.support.database import fresh_app, publish_folders
from tests.support.factories import deliveries, enrollment_of

STAFF = SimpleNamespace(email="mia@nexgenesis.example")
# Valid Markdown that passes `flask campaigns validate` but builds an email over the 100 KB limit.
TOO_LONG = "\n\n".join(
    f"Paragraph {n}: our clinic explains each step of the treatment in plain words." for n in range(1500)
)


@pytest.fixture
def campaigns_dir(tmp_path) -> Path:
    root = tmp_path / "campaigns"
    shutil.copytree(CAMPAIGNS, root)
    return root


@pytest.fixture
def broken_app(make_config, campaigns_dir):
    """The app with a welcome email too long to send."""
    welcome = campaigns_dir / "stem-cell-therapy" / "emails" / "01-welcome.md"
    welcome.write_text(welcome.read_text() + "\n\n" + TOO_LONG + "\n")
    yield from fresh_app(make_config(CAMPAIGNS_DIR=str(campaigns_dir)))


def reload_campaigns(app, root: Path) -> None:
    """What publishing the fixed email does: the new version is live at once."""
    publish_folders(app, root)


def test_a_content_error_fails_with_the_file_step_and_problem_and_the_sequence_waits_until_it_is_sent(
    broken_app, campaigns_dir, clock
):
    app = broken_app
    sender = use_sender(app, RecordingSender())
    lead_id = factories.make_lead(app)
    counts = run_tick(app)
    assert counts["failed"] == 1
    assert sender.messages == []
    [delivery] = deliveries(app)
    assert (delivery.state, delivery.error_source, delivery.attempts) == ("failed", "content", 0)
    assert delivery.error.startswith("stem-cell-therapy: step welcome: the email is")
    assert "keep it under 100 KB" in delivery.error

    # The sequence waits: the second email never goes out as the lead's first.
    enrollment = enrollment_of(app, lead_id)
    assert (enrollment.state, enrollment.next_step, enrollment.next_send_at) == ("active", 1, None)
    for _ in range(4):
        clock.advance(days=2)
        run_tick(app)
    assert sender.messages == []
    assert [d.step_id for d in deliveries(app)] == ["welcome"]

    # Fixed and queued again: the welcome goes once, then the next email follows after its delay.
    shutil.copy(CAMPAIGNS / "stem-cell-therapy/emails/01-welcome.md", campaigns_dir / "stem-cell-therapy/emails")
    reload_campaigns(app, campaigns_dir)
    with app.app_context(), db.write_transaction() as session:
        assert requeue(session, STAFF, Delivery.id == delivery.id) == 1
    run_tick(app)
    run_tick(app)
    assert sender.steps() == {("ana@example.org", "welcome"): 1}
    [sent] = deliveries(app)
    assert (sent.state, sent.error, sent.error_source) == ("sent", None, None)
    resumed = enrollment_of(app, lead_id).next_send_at
    assert resumed > clock.now()
    clock.set(resumed)
    run_tick(app)
    run_tick(app)
    assert sender.steps() == {("ana@example.org", "welcome"): 1, ("ana@example.org", "the-science"): 1}


def test_an_unexpected_composer_error_is_failed_with_its_type_never_unknown(app):
    from admin.services import queue_test_send

    sender = use_sender(app, RecordingSender())

    def broken(delivery):
        raise RuntimeError("zebulon@example.org broke it")

    app.extensions["composers"]["test"] = broken
    with app.app_context(), db.write_transaction() as session:
        queue_test_send(session, "stem-cell-therapy", "welcome", STAFF)
    run_tick(app)
    [delivery] = deliveries(app)
    assert (delivery.state, delivery.error_source, delivery.attempts) == ("failed", "content", 0)
    assert "stem-cell-therapy: step welcome: the email could not be built (RuntimeError)" in (delivery.error)
    assert "zebulon" not in delivery.error  # an unexpected error's text may quote personal data
    assert sender.messages == []
    run_tick(app)
    assert deliveries(app)[0].state == "failed"  # never retried on its own


def test_a_composer_error_on_a_confirmation_is_failed_not_unknown(app, clock):
    """Before: the confirmation composer's LookupError was taken for a sender failure and left `unknown`."""
    from leads.models import Lead

    use_sender(app, RecordingSender())
    with app.app_context(), db.write_transaction() as session:
        lead = Lead(email=None, first_name="Ana", status="new")
        session.add(lead)
        session.flush()
        session.add(
            Delivery(dedupe_key="confirm:x", kind="confirmation", lead_id=lead.id, state="pending", due_at=clock.now())
        )
    run_tick(app)
    [delivery] = deliveries(app)
    assert delivery.state == "failed"
    assert delivery.error.startswith("the confirmation email: the email could not be built (LookupError)")
