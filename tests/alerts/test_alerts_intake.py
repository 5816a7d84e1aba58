"""New-lead alerts: one email per submission and intake address, at once, without health details."""

from __future__ import annotations

from alerts_helpers import FORM, INTAKE, INTEREST_LABEL, MESSAGE, full_text, mails_to, outbox, signup, tick
from sqlalchemy import select

from core.db import db
from leads.models import Lead
from mailer.models import Delivery
from mailer.suppression import suppress
from tests.support.factories import rows


def _alerts() -> list[Delivery]:
    return rows(Delivery, Delivery.kind == "intake_alert")


def _lead_id(app) -> int:
    with app.app_context():
        return db.session.scalar(select(Lead.id).where(Lead.email == FORM["email"]))


def test_signup_sends_one_alert_per_intake_address_with_link_and_no_health_details(make_app):
    app = make_app(SITE_URL="https://clinic.example")
    signup(app.test_client(), "?utm_source=google&utm_medium=cpc&utm_campaign=knee-spring")
    with app.app_context():
        recorded = _alerts()
    assert sorted(d.recipient for d in recorded) == sorted(INTAKE)
    assert {d.state for d in recorded} == {"pending"}  # recorded with the signup, sent by the worker

    tick(app)
    lead_id = _lead_id(app)
    for address in INTAKE:
        [mail] = mails_to(app, address)
        text = full_text(mail)
        assert "New lead" in mail["Subject"]
        assert "Dana" in mail["Subject"]
        assert f"https://clinic.example/admin/leads/{lead_id}" in text
        assert "Phone call" in text  # preferred contact method
        assert "google / cpc / knee-spring" in text
        assert "stem-cell-therapy" in text
        assert "Mon 23 Nov 2026, 09:00 MST" in text  # 16:00 UTC in the clinic's time zone
        # Health details and contact data stay behind login.
        for secret in (MESSAGE, "left knee", INTEREST_LABEL, "knee pain", FORM["email"], "555-0123", "Whitfield"):
            assert secret not in text, secret
        assert "List-Unsubscribe" not in mail  # staff mail, not marketing
    with app.app_context():
        assert {d.state for d in _alerts()} == {"sent"}

    tick(app)  # a second pass sends nothing more
    assert len([m for m in outbox(app) if any(a in str(m["To"]) for a in INTAKE)]) == len(INTAKE)


def test_repeat_request_sends_one_more_alert_marked_as_repeat(make_app, clock):
    app = make_app(INTAKE_EMAILS=["frontdesk@clinic.example"])
    client = app.test_client()
    signup(client)
    tick(app)
    clock.advance(hours=2)
    signup(client, preferred_contact="text")
    tick(app)
    tick(app)

    mails = mails_to(app, "frontdesk@clinic.example")
    assert [m["Subject"].split(":")[0] for m in mails] == ["New lead", "Repeat request, details differ"]
    # The lead's record says how to reach them; the request's other answer waits in the admin.
    assert "Phone call" in full_text(mails[1])
    assert "Details differ from the lead's record: contact preference." in full_text(mails[1])
    with app.app_context():
        assert len(_alerts()) == 2


def test_a_repeat_request_with_someone_elses_details_says_so_without_the_details(make_app, clock):
    """Anyone can type someone else's email: the alert says "details differ", never which name or number."""
    app = make_app(INTAKE_EMAILS=["frontdesk@clinic.example"])
    client = app.test_client()
    signup(client)
    clock.advance(minutes=5)
    signup(client, first_name="Mallory", last_name="Imposter", phone="(720) 555-0199")
    clock.advance(minutes=5)
    signup(client)  # the real Dana again: nothing differs
    tick(app)

    first, differ, same = mails_to(app, "frontdesk@clinic.example")
    assert differ["Subject"] == "Repeat request, details differ: Dana (stem-cell-therapy)"
    text = full_text(differ)
    assert "from the lead's record: name, phone." in text
    for secret in ("Mallory", "Imposter", "555-0199", "7205550199", FORM["email"], "555-0123", MESSAGE, INTEREST_LABEL):
        assert secret not in text, secret
    assert same["Subject"] == "Repeat request: Dana (stem-cell-therapy)"
    assert "differ" not in full_text(same)
    assert first["Subject"].startswith("New lead: Dana")


def test_worker_killed_after_recording_sends_the_alert_once_on_restart(make_app):
    web = make_app(INTAKE_EMAILS=["frontdesk@clinic.example"])
    signup(web.test_client())
    # The signup committed its alert; no worker ran. A fresh worker process starts later, twice over.
    for _ in range(2):
        worker = make_app(INTAKE_EMAILS=["frontdesk@clinic.example"])
        tick(worker)
        tick(worker)
    assert len(mails_to(web, "frontdesk@clinic.example")) == 1


def test_no_intake_addresses_means_no_alert(make_app):
    app = make_app(INTAKE_EMAILS=[])
    signup(app.test_client())
    tick(app)
    with app.app_context():
        assert _alerts() == []
    assert mails_to(app, "clinic.example") == []


def test_a_name_written_as_markdown_stays_text(make_app):
    app = make_app(INTAKE_EMAILS=["frontdesk@clinic.example"])
    signup(app.test_client(), first_name="[Win](https://evil.example)")
    tick(app)
    [mail] = mails_to(app, "frontdesk@clinic.example")
    html = mail.get_body(("html",)).get_content()
    assert 'href="https://evil.example"' not in html
    assert "[Win](https://evil.example)" in html


def test_a_repeat_request_after_unsubscribing_still_alerts_the_front_desk(make_app, clock):
    app = make_app(INTAKE_EMAILS=["frontdesk@clinic.example"])
    client = app.test_client()
    signup(client)
    tick(app)
    with app.app_context(), db.write_transaction() as session:
        suppress(session, FORM["email"], "unsubscribe", "link")
    clock.advance(days=3)
    signup(client, email_consent="")  # wants a call back, still no marketing email
    tick(app)
    mails = mails_to(app, "frontdesk@clinic.example")
    assert [m["Subject"].split(":")[0] for m in mails] == ["New lead", "Repeat request"]
