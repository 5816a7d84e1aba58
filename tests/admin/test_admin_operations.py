"""Deliveries (fixing unknown ones), the outbox reader and the dashboard with its alerts."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select

from core.db import db
from mailer.models import Delivery
from nurture.models import WorkerHeartbeat
from studio.post_registry import blog


def _unknown_delivery(make_delivery, make_lead) -> int:
    return make_delivery("unk:1", lead_id=make_lead(), state="unknown", attempts=1, error="worker stopped mid-send")


def test_unknown_deliveries_are_listed_with_the_provider_message(staff, app, make_lead, make_delivery):
    delivery_id = _unknown_delivery(make_delivery, make_lead)
    html = staff.get("/admin/deliveries?state=unknown").get_data(as_text=True)
    assert f'<td data-label="#">{delivery_id}</td>' in html
    assert "worker stopped mid-send" in html
    assert "Queue again" in html
    failed = staff.get("/admin/deliveries?state=failed").get_data(as_text=True)
    assert f'<td data-label="#">{delivery_id}</td>' not in failed


def test_requeue_needs_confirmation_then_is_due_now(staff, app, make_lead, make_delivery, clock):
    delivery_id = _unknown_delivery(make_delivery, make_lead)
    staff.post(f"/admin/deliveries/{delivery_id}/resolve", {"action": "requeue"})
    with app.app_context():
        assert db.session.get(Delivery, delivery_id).state == "unknown"
    staff.post(f"/admin/deliveries/{delivery_id}/resolve", {"action": "requeue", "confirm": "y"})
    with app.app_context():
        delivery = db.session.get(Delivery, delivery_id)
        assert (delivery.state, delivery.due_at) == ("pending", clock.now())
        lead_id = delivery.lead_id
    # Who queued it is on the lead's timeline.
    page = staff.get(f"/admin/leads/{lead_id}").get_data(as_text=True)
    assert f"Email queued again by {staff.email} (stem-cell-therapy / welcome)" in page
    assert "It was unknown" in page
    # Only unknown deliveries can be marked sent.
    staff.post(f"/admin/deliveries/{delivery_id}/resolve", {"action": "sent", "confirm": "y"})
    with app.app_context():
        assert db.session.get(Delivery, delivery_id).state == "pending"


def test_mark_unknown_as_sent(staff, app, make_lead, make_delivery, clock):
    delivery_id = _unknown_delivery(make_delivery, make_lead)
    staff.post(f"/admin/deliveries/{delivery_id}/resolve", {"action": "sent", "confirm": "y"})
    with app.app_context():
        delivery = db.session.get(Delivery, delivery_id)
        assert (delivery.state, delivery.sent_at) == ("sent", clock.now())
    assert (
        staff.post(f"/admin/deliveries/{delivery_id}/resolve", {"action": "explode", "confirm": "y"}).status_code == 400
    )


def _write_eml(folder: Path, name: str, subject: str) -> None:
    message = EmailMessage()
    message["To"] = "lead@example.com"
    message["From"] = "care@nexgenesis.example"
    message["Subject"] = subject
    message.set_content("Plain text body")
    message.add_alternative("<p>HTML body<script>alert(1)</script></p>", subtype="html")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(bytes(message))


def test_outbox_lists_and_reads_messages(staff, app):
    folder = Path(app.config["OUTBOX_DIR"])
    _write_eml(folder, "20261123-1-a.eml", "Welcome to the clinic")
    html = staff.get("/admin/outbox").get_data(as_text=True)
    assert "Welcome to the clinic" in html
    page = staff.get("/admin/outbox/20261123-1-a.eml").get_data(as_text=True)
    assert "Plain text body" in page
    frame = staff.get("/admin/outbox/20261123-1-a.eml/html")
    assert "sandbox" in frame.headers["Content-Security-Policy"]
    assert "script-src" not in frame.headers["Content-Security-Policy"]  # default-src 'none' forbids scripts


def test_outbox_cannot_leave_its_folder(staff, app, tmp_path):
    Path(app.config["OUTBOX_DIR"]).mkdir(parents=True, exist_ok=True)
    (Path(app.config["OUTBOX_DIR"]).parent / "secret.eml").write_text("Subject: secret\n\nno")
    for name in ("..%2Fsecret.eml", "../secret.eml", "%2E%2E%2Fsecret.eml", ".hidden.eml", "secret", "..%5Csecret.eml"):
        response = staff.get(f"/admin/outbox/{name}")
        assert response.status_code == 404, name


def test_outbox_is_404_for_other_backends(make_config, make_user):
    from app import create_app
    from tests.support.factories import make_user as add_user
    from tests.support.staff import login

    app = create_app(make_config(MAIL_BACKEND="console"))
    client = app.test_client()
    login(client, add_user(app, "ed@nexgenesis.example"))
    assert client.get("/admin/outbox").status_code == 404
    assert "Outbox" not in client.get("/admin/").get_data(as_text=True)


def test_dashboard_funnel_and_charts(staff, app, make_lead, clock):
    make_lead("a@example.com", utm_source="google")
    make_lead("b@example.com", utm_source="google", consent=False)
    booked = make_lead("c@example.com", utm_source="facebook")
    staff.post(f"/admin/leads/{booked}/status", {"status": "booked"})
    response = staff.get("/admin/?days=7")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    kpis = dict(
        (label, int(value.replace(",", "")))
        for value, label in re.findall(
            r'<span class="kpi-value">([\d,]+)</span> <span class="kpi-label">([^<]+)</span>', html
        )
    )
    assert kpis["Signups"] == 3
    assert kpis["Consented or confirmed"] == 2
    assert kpis["Booked"] == 1
    assert html.count('role="img"') == 2
    assert '<title id="funnel-title">' in html
    assert " style=" not in html  # CSP style-src 'self': no inline styles
    assert "<script" not in html
    assert "cdn" not in html.lower()
    assert "Content-Security-Policy" in response.headers
    sources = html[html.index("Top sources by bookings") :].split("</table>")[0]
    assert "facebook" in sources
    assert "google" not in sources
    assert staff.get("/admin/?days=13&campaign=nope").status_code == 200  # bad values fall back


def test_dashboard_alerts(staff, app, make_lead, make_delivery, clock):
    _unknown_delivery(make_delivery, make_lead)
    html = staff.get("/admin/").get_data(as_text=True)
    assert "No nurture worker has ever reported" in html
    assert "1 delivery in an unknown state" in html
    with app.app_context(), db.write_transaction() as s:
        s.add(WorkerHeartbeat(worker_id="w1", hostname="h", pid=1, started_at=clock.now(), beat_at=clock.now()))
        from mailer.ledger import record_auth_failure

        record_auth_failure(s, "401 The provided authorization grant is invalid")
    html = staff.get("/admin/").get_data(as_text=True)
    assert "has stopped" not in html
    assert "never reported" not in html
    assert "Sending is paused" in html
    assert "authorization grant is invalid" in html
    clock.advance(timedelta(minutes=5))
    assert "The nurture worker has stopped" in staff.get("/admin/").get_data(as_text=True)
    staff.post("/admin/provider/resume")
    assert "Sending is paused" not in staff.get("/admin/").get_data(as_text=True)


def test_every_admin_page_has_no_inline_style_or_script(staff, app, make_lead):
    lead_id = make_lead()
    with app.app_context():
        from studio.registry import registry

        step = registry().get("stem-cell-therapy").steps[0].id
    for url in (
        "/admin/",
        "/admin/leads",
        f"/admin/leads/{lead_id}",
        "/admin/campaigns",
        "/admin/campaigns/stem-cell-therapy",
        f"/admin/campaigns/stem-cell-therapy/steps/{step}/preview",
        "/admin/deliveries",
        "/admin/outbox",
        "/admin/users",
        f"/admin/leads/{lead_id}/erase",
    ):
        html = staff.get(url).get_data(as_text=True)
        assert " style=" not in html, url
        assert "<script" not in html, url
        assert 'href="/static/admin/admin.css' in html, url


def test_seed_fills_every_table_and_can_run_twice(app, runner):
    result = runner.invoke(args=["demo", "seed", "--leads", "300", "--seed", "7"])
    assert result.exit_code == 0, result.output
    again = runner.invoke(args=["demo", "seed", "--leads", "200"])
    assert again.exit_code == 0, again.output
    from leads.consent import CURRENT_EMAIL_CONSENT, PRIVACY_NOTICE_VERSION
    from leads.models import Consent, Lead, Submission
    from mailer.models import ProviderEvent
    from nurture.models import Enrollment
    from public.models import PageView

    with app.app_context():
        assert len(db.session.scalars(select(Lead.id)).all()) == 500
        for model in (Submission, Enrollment, Delivery, ProviderEvent, PageView):
            assert db.session.scalars(select(model.id).limit(1)).first() is not None, model.__name__
        statuses = set(db.session.scalars(select(Lead.status).distinct()))
        versions = set(db.session.scalars(select(Consent.version).distinct()))
        blog_pages = set(db.session.scalars(select(PageView.page).where(PageView.page.like("/blog/%")).distinct()))
        posts = {post.path for post in blog().posts}
    assert {"new", "contacted", "booked"} <= statuses
    # The wording versions the form really records, and views of posts the blog really serves.
    assert versions == {CURRENT_EMAIL_CONSENT, PRIVACY_NOTICE_VERSION}
    assert blog_pages == posts
