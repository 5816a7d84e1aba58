"""Failures can be fixed from the admin: queue failed deliveries again (one, a step's, a period's), never a sent one;
who did it is on the timeline; the texts say "the provider" only when a provider answered."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from admin.models import User
from admin.services import REQUEUE_STATES, requeue
from core.db import db
from mailer.base import PermanentError
from mailer.ledger import record_auth_failure
from mailer.models import Delivery
from tests.fakes.senders import FlakySender, RecordingSender, run_tick, use_sender
from tests.support import factories
from tests.support.factories import deliveries


def _state(app, delivery_id: int) -> str:
    with app.app_context():
        state = db.session.scalar(select(Delivery.state).where(Delivery.id == delivery_id))
        db.session.commit()
        return state


def test_a_failed_delivery_queued_again_is_sent_once_and_a_sent_one_can_never_be_queued(staff, app):
    sender = use_sender(app, FlakySender(PermanentError("SendGrid refused the message (400): bad header")))
    lead_id = factories.make_lead(app)
    run_tick(app)
    [failed] = deliveries(app)
    assert (failed.state, failed.error_source) == ("failed", "provider")
    listed = staff.get("/admin/deliveries?state=failed").get_data(as_text=True)
    assert "The provider answered: SendGrid refused the message (400): bad header" in listed
    assert "Queue again" in listed

    staff.post(f"/admin/deliveries/{failed.id}/resolve", {"action": "requeue", "state": "failed"})
    assert _state(app, failed.id) == "pending"
    run_tick(app)
    run_tick(app)
    assert sender.steps() == {("ana@example.org", "welcome"): 1}
    assert _state(app, failed.id) == "sent"
    timeline = staff.get(f"/admin/leads/{lead_id}").get_data(as_text=True)
    assert f"Email queued again by {staff.email} (stem-cell-therapy / welcome)" in timeline
    assert "It was failed" in timeline

    # Sent: no button, the action refuses, the bulk action skips it, the service's UPDATE does not match it.
    assert "Queue again" not in staff.get("/admin/deliveries").get_data(as_text=True)
    response = staff.post(f"/admin/deliveries/{failed.id}/resolve", {"action": "requeue"}, follow_redirects=True)
    assert "is sent: only failed or unknown deliveries can be queued again" in response.get_data(as_text=True)
    staff.post("/admin/deliveries/requeue", {"campaign": "stem-cell-therapy", "confirm": "y"})
    with app.app_context(), db.write_transaction() as session:
        user = session.scalars(select(User)).first()
        assert requeue(session, user, Delivery.id == failed.id, states=REQUEUE_STATES) == 0
        with pytest.raises(ValueError, match="sent"):
            requeue(session, user, Delivery.id == failed.id, states=("sent",))
    assert _state(app, failed.id) == "sent"
    run_tick(app)
    assert len(sender.messages) == 1


def _failed(make_delivery, lead_id: int, key: str, step: str, **extra) -> int:
    return make_delivery(
        key,
        lead_id=lead_id,
        step_id=step,
        **({"state": "failed", "error": "broken", "error_source": "content"} | extra),
    )


def test_queue_all_failed_deliveries_of_a_step_needs_the_box_and_touches_only_that_step(
    staff, app, make_lead, make_delivery
):
    lead = make_lead()
    welcome = [_failed(make_delivery, lead, f"w{n}", "welcome") for n in range(2)]
    other = _failed(make_delivery, lead, "s1", "the-science")
    sent = _failed(make_delivery, lead, "w-sent", "welcome", state="sent")
    form = {"campaign": "stem-cell-therapy", "step": "welcome"}
    staff.post("/admin/deliveries/requeue", form)
    assert {_state(app, i) for i in welcome} == {"failed"}  # the box was not ticked
    response = staff.post("/admin/deliveries/requeue", {**form, "confirm": "y"}, follow_redirects=True)
    assert "2 failed deliveries queued again" in response.get_data(as_text=True)
    assert [_state(app, i) for i in (*welcome, other, sent)] == ["pending", "pending", "failed", "sent"]


def test_queue_all_failed_deliveries_of_a_period(staff, app, make_lead, make_delivery, clock):
    lead = make_lead()
    old = _failed(make_delivery, lead, "old", "welcome", updated_at=clock.now())
    clock.advance(days=3)
    recent = _failed(make_delivery, lead, "new", "welcome", updated_at=clock.now())
    day = clock.now().date().isoformat()
    listed = staff.get(f"/admin/deliveries?state=failed&date_from={day}").get_data(as_text=True)
    assert "Queue all 1 failed deliveries shown here again" in listed
    staff.post("/admin/deliveries/requeue", {"date_from": day, "confirm": "y"})
    assert (_state(app, old), _state(app, recent)) == ("failed", "pending")


def test_the_texts_name_the_provider_only_when_it_answered(staff, app, make_lead, make_delivery):
    lead = make_lead()
    _failed(make_delivery, lead, "content", "welcome")
    _failed(
        make_delivery,
        lead,
        "provider",
        "the-science",
        error="SendGrid refused the message (400): invalid email",
        error_source="provider",
    )
    dashboard = staff.get("/admin/").get_data(as_text=True)
    assert "2 deliveries failed in this period" in dashboard
    assert "1 could not be built (a campaign file or template: fix it); 1 refused by the provider" in dashboard
    page = staff.get(f"/admin/leads/{lead}").get_data(as_text=True)
    assert "Not sent, the email could not be built: broken" in page
    assert "The provider answered: SendGrid refused the message (400): invalid email" in page
    assert "Provider said" not in page


def test_a_content_failure_alone_never_says_the_provider_refused(staff, app, make_lead, make_delivery):
    _failed(make_delivery, make_lead(), "content", "welcome")
    dashboard = staff.get("/admin/").get_data(as_text=True)
    assert "1 could not be built" in dashboard
    assert "refused" not in dashboard


def test_the_lead_page_says_the_sequence_waits_and_queues_the_failed_email_again(staff, app):
    sender = use_sender(app, FlakySender(PermanentError("SendGrid refused the message (400): bad header")))
    lead_id = factories.make_lead(app)
    run_tick(app)
    page = staff.get(f"/admin/leads/{lead_id}").get_data(as_text=True)
    assert "Waiting: later emails are held" in page
    assert "When an email of a sequence fails, the later ones wait" in page
    [failed] = deliveries(app)
    response = staff.post(
        f"/admin/deliveries/{failed.id}/resolve", {"action": "requeue", "lead": str(lead_id)}, follow_redirects=False
    )
    assert response.headers["Location"].endswith(f"/admin/leads/{lead_id}")
    run_tick(app)
    assert sender.steps() == {("ana@example.org", "welcome"): 1}
    assert "Waiting: later emails are held" not in staff.get(f"/admin/leads/{lead_id}").get_data(as_text=True)


def test_the_dashboard_names_the_setting_that_paused_sending_and_resumes_it(staff, app):
    use_sender(app, RecordingSender())
    with app.app_context(), db.write_transaction() as session:
        record_auth_failure(session, "CLINIC_POSTAL_ADDRESS: is not set", "CLINIC_POSTAL_ADDRESS")
    dashboard = staff.get("/admin/").get_data(as_text=True)
    assert "Sending is paused: the setting CLINIC_POSTAL_ADDRESS is missing or wrong" in dashboard
    assert "Nothing was marked failed" in dashboard
    staff.post("/admin/provider/resume")
    assert "Sending is paused" not in staff.get("/admin/").get_data(as_text=True)
