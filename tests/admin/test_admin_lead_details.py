"""A repeat request with other details: shown on the lead's page, changed only when staff accept them."""

from __future__ import annotations

import re

from sqlalchemy import select

from core.db import db
from leads.models import Lead, Submission
from tests.support import factories


def _accept_urls(html: str) -> list[str]:
    return re.findall(r'action="(/admin/leads/\d+/submissions/\d+/accept)"', html)


def test_the_lead_page_shows_what_a_repeat_request_gave_differently_and_accepting_is_recorded(
    staff, make_lead, app, clock
):
    lead_id = make_lead()
    clock.advance(hours=1)
    assert make_lead(first_name="Mallory", phone="+13035550142", interest="hip") == lead_id
    html = staff.get(f"/admin/leads/{lead_id}").get_data(as_text=True)
    assert "Details differ from the record" in html
    section = html[html.index("Details differ from the record") : html.index("Accept these details")]
    section = re.sub(r' data-label="[^"]*"|<a class="tel" href="[^"]*">|</a>', "", section)
    assert re.search(r"First name</th><td>Dana</td><td>Mallory</td>", section)
    assert re.search(r"Phone</th><td>\(303\) 555-0123</td><td>\(303\) 555-0142</td>", section)
    assert re.search(r"Interest</th><td>Knee</td><td>Hip</td>", section)
    assert "Last name" not in section  # the same in both
    [accept] = _accept_urls(html)

    response = staff.post(accept)
    assert response.status_code == 302
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert (lead.first_name, lead.phone, lead.interest) == ("Mallory", "+13035550142", "hip")
        submission = db.session.scalars(select(Submission).order_by(Submission.id.desc())).first()
        assert submission.details_accepted_at == clock.now()
    page = staff.get(f"/admin/leads/{lead_id}").get_data(as_text=True)
    assert "Details differ" not in page
    assert "Details of a repeat request accepted" in page
    assert f"By {staff.email}" in page


def test_a_repeat_request_with_the_same_details_asks_nothing(staff, make_lead):
    lead_id = make_lead()
    make_lead()
    html = staff.get(f"/admin/leads/{lead_id}").get_data(as_text=True)
    assert "Details differ" not in html
    assert _accept_urls(html) == []


def test_a_request_of_another_lead_cannot_be_accepted_here(staff, make_lead, app):
    first = make_lead()
    make_lead(first_name="Mallory")
    other = make_lead("other@example.com", first_name="Olga")
    [accept] = _accept_urls(staff.get(f"/admin/leads/{first}").get_data(as_text=True))
    wrong = accept.replace(f"/leads/{first}/", f"/leads/{other}/")
    assert staff.post(wrong).status_code == 404
    assert staff.client.post(accept).status_code == 400  # no CSRF token
    with app.app_context():
        assert db.session.get(Lead, first).first_name == "Dana"


def test_staff_move_a_lead_to_a_step_or_take_it_out_of_the_sequence(app, marketer, clock):
    from nurture.models import Enrollment
    from tests.fakes.senders import RecordingSender, run_tick, use_sender
    from tests.support.factories import enrollment_of

    sender = use_sender(app, RecordingSender())
    lead_id = factories.make_lead(app, "mover@example.org")
    run_tick(app)
    with app.app_context():
        enrollment_id = db.session.scalar(select(Enrollment.id).where(Enrollment.lead_id == lead_id))
    page = marketer.get(f"/admin/leads/{lead_id}").get_data(as_text=True)
    assert "Take out of this sequence" in page
    assert 'name="step"' in page

    moved = marketer.post(
        f"/admin/leads/{lead_id}/enrollments/{enrollment_id}/move", {"step": "book"}, follow_redirects=True
    )
    assert "Moved:" in moved.get_data(as_text=True)
    assert enrollment_of(app, lead_id).last_step_id == "knee"
    run_tick(app)
    assert sender.step_ids == ["welcome", "book"]  # the chosen email went next; nothing in between

    marketer.post(f"/admin/leads/{lead_id}/enrollments/{enrollment_id}/move", {"step": "welcome"})
    run_tick(app)
    assert sender.step_ids.count("welcome") == 1  # a step already sent is never sent again

    removed = marketer.post(f"/admin/leads/{lead_id}/enrollments/{enrollment_id}/remove", follow_redirects=True)
    assert "Removed from the sequence" in removed.get_data(as_text=True)
    assert enrollment_of(app, lead_id).state == "exited"
    clock.advance(days=30)
    run_tick(app)
    assert sender.step_ids.count("welcome") == 1
    assert len(sender.step_ids) == 2
    refused = marketer.post(
        f"/admin/leads/{lead_id}/enrollments/{enrollment_id}/move", {"step": "book"}, follow_redirects=True
    )
    assert "Not moved: only a running or finished sequence can be moved" in refused.get_data(as_text=True)
