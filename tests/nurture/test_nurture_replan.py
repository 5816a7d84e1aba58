"""Leads already in a sequence when a new version is published continue by step id (README: the in-flight rule)."""

from __future__ import annotations

import copy

import pytest

from core.db import db
from nurture import replan
from studio import services
from studio.registry import registry
from tests.fakes.senders import RecordingSender, run_tick, use_sender
from tests.support import factories
from tests.support.factories import deliveries, enrollment_of

SLUG = "stem-cell-therapy"


@pytest.fixture
def sender(app):
    return use_sender(app, RecordingSender())


def new_step(step_id: str, delay: str, subject: str) -> dict:
    return {
        "id": step_id,
        "delay": delay,
        "any_time": True,
        "interests": [],
        "subject": subject,
        "preheader": "",
        "body": f"Hi {{{{ first_name }}}},\n\n{subject}.\n",
    }


def edit_and_publish(app, change) -> None:
    with app.app_context():
        record = services.get_record(db.session, SLUG)
        draft = copy.deepcopy(record.draft)
        change(draft)
        services.save_draft(db.session, record, draft, record.draft_revision, "ann@clinic.example")
        services.publish(db.session, record, "ann@clinic.example")
        db.session.commit()


def run_days(app, clock, days: int) -> None:
    for _ in range(days * 4):
        clock.advance(hours=6)
        run_tick(app)


def test_a_lead_at_step_two_continues_by_step_id_after_edits_inserts_and_removals(app, sender, clock):
    lead_id = factories.make_lead(app)  # interested in knee: the knee step applies
    run_tick(app)
    run_days(app, clock, 2)
    assert sender.step_ids == ["welcome", "the-science"]
    assert enrollment_of(app, lead_id).last_step_id == "the-science"

    def change(draft: dict) -> None:
        steps = draft["steps"]
        steps[2]["subject"] = "Edited: regenerative medicine compared"  # step 3, edited
        steps.insert(1, new_step("inserted-before", "1d", "Inserted before"))  # before the lead's position
        steps.insert(4, new_step("added-after", "1d", "Added after"))  # after step 3
        draft["steps"] = [s for s in steps if s["id"] != "knee"]  # removed

    with app.app_context():
        live = registry().get(SLUG)
        record = services.get_record(db.session, SLUG)
        draft = copy.deepcopy(record.draft)
        change(draft)
        effect = replan.effect(db.session, live, services.check(draft).campaign)
        assert effect.waiting == 1
        assert effect.next_steps == {"compared": 1}
        assert effect.kinds["compared"] == "changed"
    edit_and_publish(app, change)

    run_days(app, clock, 20)
    assert sender.step_ids == ["welcome", "the-science", "compared", "added-after", "book"]
    compared = sender.messages[sender.step_ids.index("compared")]
    assert compared.subject == "Edited: regenerative medicine compared"
    steps = [d.step_id for d in deliveries(app)]
    assert "inserted-before" not in steps  # never sent retroactively
    assert "knee" not in steps  # removed
    assert len(steps) == len(set(steps))  # once each
    assert enrollment_of(app, lead_id).state == "completed"


def test_delays_count_from_the_previous_send_on_the_new_version(app, sender, clock):
    factories.make_lead(app)
    run_tick(app)
    edit_and_publish(app, lambda draft: draft["steps"][1].update(delay="1d", any_time=True))
    clock.advance(hours=23)
    run_tick(app)
    assert sender.step_ids == ["welcome"]
    clock.advance(hours=1, minutes=1)
    run_tick(app)
    assert sender.step_ids == ["welcome", "the-science"]


def test_when_the_last_sent_step_is_removed_the_lead_continues_with_the_step_after_it(app, sender, clock):
    lead_id = factories.make_lead(app)
    run_tick(app)
    run_days(app, clock, 2)
    edit_and_publish(app, lambda draft: draft.update(steps=[s for s in draft["steps"] if s["id"] != "the-science"]))
    enrollment = enrollment_of(app, lead_id)
    assert (enrollment.last_step_id, enrollment.next_step) == ("welcome", 1)  # the next is `compared`
    run_days(app, clock, 20)
    assert sender.step_ids == ["welcome", "the-science", "compared", "knee", "book"]


def test_leads_who_finished_stay_finished_when_a_step_is_added(app, sender, clock):
    lead_id = factories.make_lead(app)
    run_tick(app)
    run_days(app, clock, 20)
    assert enrollment_of(app, lead_id).state == "completed"
    edit_and_publish(app, lambda draft: draft["steps"].append(new_step("later", "1d", "Later")))
    run_days(app, clock, 3)
    assert "later" not in sender.step_ids


def test_an_archived_campaign_sends_nothing_until_it_is_brought_back(app, sender, clock):
    factories.make_lead(app)
    run_tick(app)
    with app.app_context():
        services.archive(db.session, services.get_record(db.session, SLUG), "ann@clinic.example")
        db.session.commit()
    run_days(app, clock, 4)
    assert sender.step_ids == ["welcome"]
    with app.app_context():
        services.unarchive(db.session, services.get_record(db.session, SLUG), "ann@clinic.example")
        db.session.commit()
    run_tick(app)
    assert sender.step_ids == ["welcome", "the-science"]
