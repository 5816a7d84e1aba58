"""Double opt-in: the confirmation leaves at once, one click starts the sequence, at most one reminder."""

from __future__ import annotations

import re
import shutil

import pytest
from flask import Flask
from sqlalchemy import select

from core.db import db
from leads.models import Consent
from nurture.tokens import make_confirm_token
from tests.fakes.senders import RecordingSender, run_tick, use_sender
from tests.support import factories
from tests.support.content import CAMPAIGNS
from tests.support.database import fresh_app
from tests.support.factories import deliveries, enrollment_of


@pytest.fixture
def doi_app(make_config, tmp_path) -> Flask:
    """The app with a copy of the stem cell campaign switched to double opt-in."""
    root = tmp_path / "campaigns"
    shutil.copytree(CAMPAIGNS / "stem-cell-therapy", root / "stem-cell-therapy")
    yaml_path = root / "stem-cell-therapy" / "campaign.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("double_opt_in: false", "double_opt_in: true"))
    yield from fresh_app(make_config(CAMPAIGNS_DIR=str(root)))


def confirm_link(message) -> str:
    match = re.search(r"https?://[^/\s]+(/confirm/[A-Za-z0-9._-]+)", message.text)
    assert match, "the confirmation email carries a /confirm/ link"
    return match.group(1)


def test_confirmation_leaves_at_once_and_nothing_else_before_the_click(doi_app, clock):
    sender = use_sender(doi_app, RecordingSender())
    lead_id = factories.make_lead(doi_app)
    run_tick(doi_app)
    assert [m.subject for m in sender.messages] == ["Please confirm your email address"]
    assert "List-Unsubscribe" not in sender.messages[0].headers
    assert enrollment_of(doi_app, lead_id).state == "pending"
    clock.advance(hours=12)
    run_tick(doi_app)
    assert len(sender.messages) == 1


def test_one_click_confirms_records_consent_and_starts_the_sequence(doi_app, clock):
    sender = use_sender(doi_app, RecordingSender())
    lead_id = factories.make_lead(doi_app)
    run_tick(doi_app)
    client = doi_app.test_client()
    response = client.get(confirm_link(sender.messages[0]))
    assert response.status_code == 200
    assert b"you are confirmed" in response.data
    enrollment = enrollment_of(doi_app, lead_id)
    assert enrollment.state == "active"
    assert enrollment.confirmed_at == clock.now()
    run_tick(doi_app)
    assert sender.step_ids[1:] == ["welcome"]
    # A second click is harmless: no second consent, no restart.
    again = client.get(confirm_link(sender.messages[0]))
    assert again.status_code == 200
    assert b"already confirmed" in again.data
    with doi_app.app_context():
        sources = list(db.session.scalars(select(Consent.source).where(Consent.lead_id == lead_id)))
    assert sources.count("confirm") == 1
    # The reminder is no longer needed.
    clock.advance(days=3)
    run_tick(doi_app)
    assert "Still interested? Confirm your email address" not in [m.subject for m in sender.messages]
    reminder = next(d for d in deliveries(doi_app) if d.kind == "reminder")
    assert reminder.state == "skipped"


def test_unconfirmed_lead_gets_exactly_one_reminder(doi_app, clock):
    sender = use_sender(doi_app, RecordingSender())
    factories.make_lead(doi_app)
    for _ in range(10):
        run_tick(doi_app)
        clock.advance(days=1)
    subjects = [m.subject for m in sender.messages]
    assert subjects == ["Please confirm your email address", "Still interested? Confirm your email address"]


@pytest.mark.parametrize("token", ["nonsense", "a" * 400])
def test_bad_token_is_a_400_page_and_changes_nothing(doi_app, token):
    use_sender(doi_app, RecordingSender())
    lead_id = factories.make_lead(doi_app)
    response = doi_app.test_client().get(f"/confirm/{token}")
    assert response.status_code == 400
    assert b"not valid" in response.data
    assert enrollment_of(doi_app, lead_id).state == "pending"


def test_expired_token_is_refused(doi_app, clock):
    sender = use_sender(doi_app, RecordingSender())
    lead_id = factories.make_lead(doi_app)
    run_tick(doi_app)
    link = confirm_link(sender.messages[0])
    clock.advance(days=15)
    response = doi_app.test_client().get(link)
    assert response.status_code == 400
    assert enrollment_of(doi_app, lead_id).state == "pending"


def test_confirm_token_is_signed_for_confirming_only(doi_app):
    from mailer.tokens import make_token

    use_sender(doi_app, RecordingSender())
    lead_id = factories.make_lead(doi_app)
    with doi_app.app_context():
        enrollment_id = enrollment_of(doi_app, lead_id).id
        unsubscribe_token = make_token(enrollment_id)
        good = make_confirm_token(enrollment_id)
    client = doi_app.test_client()
    assert client.get(f"/confirm/{unsubscribe_token}").status_code == 400
    assert client.get(f"/confirm/{good[:-2]}xx").status_code == 400
    assert enrollment_of(doi_app, lead_id).state == "pending"
    assert client.get(f"/confirm/{good}").status_code == 200
