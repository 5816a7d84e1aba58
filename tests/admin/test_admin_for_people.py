"""The admin as the marketing team reads it: the lead's message and next step, sent emails that open, names and
answers in words on the deliveries, plural counts, test sends to staff only, lifting a suppression."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from sqlalchemy import select

from core.db import db
from leads.consent import SUPPRESSION_LIFTED
from leads.models import Consent, Lead
from mailer.models import Delivery, Suppression
from nurture.dispatch import tick

MESSAGE = "My left knee locks on the stairs since the accident."


def _send_due(app) -> None:
    with app.app_context():
        tick("test-worker")


def test_the_lead_page_shows_the_typed_message_to_staff_only(app, client, make_user, make_lead, caplog):
    from tests.support.staff import login

    caplog.set_level(logging.DEBUG)
    lead_id = make_lead(message=MESSAGE)
    _send_due(app)  # the welcome email leaves; the message must not be in it either
    anonymous = client.get(f"/admin/leads/{lead_id}", follow_redirects=True)
    assert "Sign in" in anonymous.get_data(as_text=True)
    assert MESSAGE not in anonymous.get_data(as_text=True)

    login(client, make_user())
    html = client.get(f"/admin/leads/{lead_id}").get_data(as_text=True)
    assert f'<blockquote class="typed-message">{MESSAGE}</blockquote>' in html
    assert MESSAGE not in caplog.text  # never logged
    outbox = "".join(p.read_text() for p in Path(app.config["OUTBOX_DIR"]).glob("*.eml"))
    assert "We got your consultation request" in outbox
    assert "locks on the stairs" not in outbox  # never emailed


def test_the_lead_page_names_the_next_email_and_opens_the_sent_one(staff, app, make_lead):
    lead_id = make_lead()
    _send_due(app)
    html = staff.get(f"/admin/leads/{lead_id}").get_data(as_text=True)
    nurture = html[html.index('id="enrollment-stem-cell-therapy"') :].split("</li>")[0]
    assert re.search(r"next email <span class=\"next-step\">2 of 5, “[^”]+” \(the-science\)</span> on <time", nurture)
    [link] = re.findall(r'href="(/admin/deliveries/\d+/email)"', html)
    copy = staff.get(link).get_data(as_text=True)
    assert "The file the outbox wrote when it was sent." in copy
    assert "We got your consultation request" in copy
    frame = staff.get(link + ".html")
    assert "Hi Dana" in frame.get_data(as_text=True)
    assert "sandbox" in frame.headers["Content-Security-Policy"]


def test_deliveries_name_the_lead_and_answer_in_words_with_the_id_on_hover(staff, app, make_lead):
    make_lead(first_name="Imani", last_name="Okoro")
    _send_due(app)
    html = staff.get("/admin/deliveries").get_data(as_text=True)
    assert ">Imani Okoro</a>" in html
    assert "Lead #" not in html
    with app.app_context():
        message_id = db.session.scalar(select(Delivery.provider_message_id))
    assert f'<span title="Provider\'s message id: {message_id}">Written to the outbox</span>' in html


def test_counts_read_as_english(staff, make_lead):
    make_lead()
    assert "1 lead;" in staff.get("/admin/leads").get_data(as_text=True)
    assert "1 lead matches;" in staff.get("/admin/leads?q=dana").get_data(as_text=True)
    make_lead("eli@example.com", first_name="Eli")
    assert "2 leads match;" in staff.get("/admin/leads?status=new").get_data(as_text=True)


def test_emails_delivered_counts_what_the_outbox_wrote(staff, app, make_lead):
    make_lead()
    _send_due(app)
    html = staff.get("/admin/").get_data(as_text=True)
    assert re.search(r'<span class="kpi-value">1</span> <span class="kpi-label">Emails delivered</span>', html)
    assert "what the outbox (an email counts once written) confirmed" in html


def test_test_sends_go_to_listed_staff_addresses_never_to_a_lead(staff, app, make_lead):
    make_lead("dana@example.com")
    app.config["TEST_SEND_EMAILS"] = ["front.desk@nexgenesis.example"]
    preview = staff.get("/admin/campaigns/stem-cell-therapy/steps/welcome/preview").get_data(as_text=True)
    assert '<option value="front.desk@nexgenesis.example">' in preview
    url = "/admin/campaigns/stem-cell-therapy/steps/welcome/test"
    assert staff.post(url, {"to": "front.desk@nexgenesis.example"}).status_code == 302
    refused = staff.post(url, {"to": "dana@example.com"}, follow_redirects=True).get_data(as_text=True)
    assert "is not a staff address for test sends" in refused
    with app.app_context():
        sent_to = db.session.scalars(select(Delivery.recipient).where(Delivery.kind == "test")).all()
    assert sent_to == ["front.desk@nexgenesis.example"]


def test_an_admin_lifts_a_suppression_with_a_reason_recorded_in_the_consent_ledger(staff, app, make_lead):
    lead_id = make_lead()
    staff.post(f"/admin/leads/{lead_id}/unsubscribe")
    page = staff.get("/admin/suppressions?q=dana").get_data(as_text=True)
    assert "Unsubscribed by staff" in page
    [lift] = re.findall(r'action="(/admin/suppressions/\d+/lift)"', page)

    assert "say why" in staff.post(lift, {"reason": "  "}, follow_redirects=True).get_data(as_text=True)
    done = staff.post(lift, {"reason": "She phoned and asked for the emails again"}, follow_redirects=True)
    assert "Suppression lifted and recorded on the lead&#39;s timeline" in done.get_data(as_text=True)
    assert "Suppression lifted by admin@nexgenesis.example (it was: manual)" in done.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Suppression)).all() == []
        assert db.session.get(Lead, lead_id).unsubscribed_at is None
        consent = db.session.scalars(select(Consent).where(Consent.purpose == SUPPRESSION_LIFTED)).one()
        assert (consent.actor, consent.detail) == (
            "admin@nexgenesis.example",
            "She phoned and asked for the emails again",
        )


def test_a_spam_report_is_never_lifted_and_marketers_cannot_lift(staff, app, make_lead, client, make_user):
    from mailer.suppression import suppress
    from tests.support.staff import login

    make_lead()
    with app.app_context(), db.write_transaction() as s:
        suppress(s, "dana@example.com", "spamreport", "provider")
        row_id = s.scalar(select(Suppression.id))
    page = staff.get("/admin/suppressions").get_data(as_text=True)
    assert "Never: reported as spam" in page
    refused = staff.post(f"/admin/suppressions/{row_id}/lift", {"reason": "asked"}, follow_redirects=True)
    assert "an address reported as spam stays suppressed" in refused.get_data(as_text=True)
    staff.client.post("/admin/logout", data={"csrf_token": staff.token})
    login(client, make_user("mia@nexgenesis.example", role="marketer"))
    assert client.post(f"/admin/suppressions/{row_id}/lift", data={"reason": "x"}).status_code in (400, 403)
    with app.app_context():
        assert db.session.get(Suppression, row_id) is not None
