"""The leads screens: the call-back queue, filters and CSV, the lead page's actions, GDPR export and erase."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

from sqlalchemy import String, Text, select

from core.db import Base, db
from leads.models import Lead, Note, StatusChange
from mailer.models import Delivery, Suppression
from nurture.models import Enrollment


def _ids_in_table(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'href="/admin/leads/(\d+)"', html)]


def test_new_uncontacted_leads_come_first_with_their_wait(staff, make_lead, clock):
    old_contacted = make_lead("old@example.com", first_name="Olga")
    clock.advance(hours=1)
    waiting_long = make_lead("long@example.com", first_name="Lana")
    clock.advance(hours=2)
    waiting_short = make_lead("short@example.com", first_name="Sam")
    staff.post(f"/admin/leads/{old_contacted}/contacted")
    clock.advance(minutes=30)
    html = staff.get("/admin/leads").get_data(as_text=True)
    assert _ids_in_table(html) == [waiting_long, waiting_short, old_contacted]
    assert "<strong>2 new and not yet contacted</strong>" in html
    assert "2 h 30 min" in html  # Lana has waited since her signup
    assert "30 min" in html


def test_mark_contacted_records_who_and_when(staff, make_lead, app, clock):
    lead_id = make_lead()
    clock.advance(minutes=42)
    response = staff.post(f"/admin/leads/{lead_id}/contacted")
    assert response.status_code == 302
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert lead.status == "contacted"
        assert lead.contacted_at == clock.now()
        from admin.models import User

        assert db.session.get(User, lead.contacted_by_id).email == staff.email
    page = staff.get(f"/admin/leads/{lead_id}").get_data(as_text=True)
    assert f"by {staff.email}" in page


def test_status_booked_ends_the_nurture_at_once(staff, make_lead, app):
    lead_id = make_lead()
    with app.app_context():
        enrollment = db.session.scalars(select(Enrollment).where(Enrollment.lead_id == lead_id)).one()
        assert enrollment.state in ("active", "pending")
    response = staff.post(f"/admin/leads/{lead_id}/status", {"status": "booked"})
    assert response.status_code == 302
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        enrollment = db.session.scalars(select(Enrollment).where(Enrollment.lead_id == lead_id)).one()
        change = db.session.scalars(select(StatusChange).where(StatusChange.lead_id == lead_id)).one()
    assert lead.status == "booked"
    assert enrollment.state == "exited"
    assert enrollment.next_send_at is None
    assert (change.new_status, change.source) == ("booked", "admin")
    page = staff.get(f"/admin/leads/{lead_id}").get_data(as_text=True)
    assert 'class="enrollment-state">exited' in page


def test_unknown_status_changes_nothing(staff, make_lead, app):
    lead_id = make_lead()
    staff.post(f"/admin/leads/{lead_id}/status", {"status": "vip"})
    with app.app_context():
        assert db.session.get(Lead, lead_id).status == "new"


def test_search_filters_and_csv_export_agree(staff, make_lead, app):
    ids = {
        "a": make_lead("ann.knee@example.com", first_name="Ann", interest="knee", utm_source="google"),
        "b": make_lead(
            "bob.hip@example.com", first_name="Bob", interest="hip", utm_source="google", phone="+17205550199"
        ),
        "c": make_lead("cid.knee@example.com", first_name="Cid", interest="knee", utm_source="facebook"),
        "d": make_lead("dee.knee@example.com", first_name="Dee", interest="knee", utm_source="google"),
    }
    staff.post(f"/admin/leads/{ids['d']}/status", {"status": "booked"})

    cases = {
        "interest=knee&source=google": {ids["a"], ids["d"]},
        "interest=knee&source=google&status=booked": {ids["d"]},
        "q=555-0199": {ids["b"]},
        "q=bob": {ids["b"]},
        "q=cid.knee": {ids["c"]},
        "campaign=stem-cell-therapy&status=new": {ids["a"], ids["b"], ids["c"]},
        "date_from=2026-11-23&date_to=2026-11-23": set(ids.values()),
        "date_from=2026-11-24": set(),
    }
    for query, expected in cases.items():
        listed = set(_ids_in_table(staff.get(f"/admin/leads?{query}").get_data(as_text=True)))
        assert listed == expected, query
        response = staff.get(f"/admin/leads/export.csv?{query}")
        assert response.mimetype == "text/csv"
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        assert {int(r["id"]) for r in rows} == expected, query
    rows = list(csv.DictReader(io.StringIO(staff.get("/admin/leads/export.csv?q=bob").get_data(as_text=True))))
    assert rows[0]["email"] == "bob.hip@example.com"
    assert rows[0]["phone"] == "'+17205550199"  # quoted as `flask leads export` quotes it


def test_csv_cells_cannot_run_as_formulas(staff, make_lead):
    make_lead("formula@example.com", first_name="=HYPERLINK(1)")
    body = staff.get("/admin/leads/export.csv").get_data(as_text=True)
    assert "'=HYPERLINK(1)" in body


def test_bad_filter_values_are_ignored_with_a_message(staff, make_lead):
    make_lead()
    response = staff.get("/admin/leads?status=nope&date_from=yesterday&page=abc&sort=evil")
    assert response.status_code == 400  # the list still shows, without the bad values
    assert "dana@example.com" in response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    assert "is not a date" in html
    assert "Unknown status" in html


def test_pagination_spans_the_waiting_queue_and_the_rest(staff, make_lead, app, clock, monkeypatch):
    import admin.queries

    monkeypatch.setattr(admin.queries, "PER_PAGE", 2)
    created = []
    for n in range(5):
        created.append(make_lead(f"p{n}@example.com"))
        clock.advance(minutes=1)
    staff.post(f"/admin/leads/{created[0]}/contacted")
    staff.post(f"/admin/leads/{created[1]}/contacted")
    from admin.queries import LeadFilter, lead_page

    seen = []
    with app.app_context():
        for page in (1, 2, 3):
            result = lead_page(db.session, LeadFilter(page=page), "America/Denver", per_page=2)
            seen += [lead.id for lead in result.leads]
    # Waiting (oldest first), then everyone else (newest first); every lead once.
    assert seen == [created[2], created[3], created[4], created[1], created[0]]


def test_notes_and_timeline(staff, make_lead):
    lead_id = make_lead()
    staff.post(f"/admin/leads/{lead_id}/notes", {"body": "Called, voicemail. <b>Try again</b> Friday."})
    html = staff.get(f"/admin/leads/{lead_id}").get_data(as_text=True)
    assert "Called, voicemail. &lt;b&gt;Try again&lt;/b&gt; Friday." in html
    assert "Asked for a consultation" in html
    assert "UTM source=google, medium=cpc, campaign=knee-pain-search" in html
    assert "Consent granted: email marketing" in html
    assert "Enrolled in stem-cell-therapy" in html


def test_manual_unsubscribe_suppresses_and_ends_nurture(staff, make_lead, app):
    lead_id = make_lead()
    assert staff.post(f"/admin/leads/{lead_id}/unsubscribe").status_code == 302
    with app.app_context():
        assert db.session.scalars(select(Suppression)).one().reason == "manual"
        assert db.session.scalars(select(Enrollment)).one().state == "exited"
        assert db.session.get(Lead, lead_id).email_opt_in is False


def test_gdpr_export_holds_everything(staff, make_lead):
    lead_id = make_lead()
    staff.post(f"/admin/leads/{lead_id}/notes", {"body": "Prefers mornings"})
    response = staff.get(f"/admin/leads/{lead_id}/export.json")
    assert response.headers["Content-Disposition"].startswith("attachment")
    data = json.loads(response.get_data(as_text=True))
    assert data["lead"]["email"] == "dana@example.com"
    assert data["submissions"][0]["message"] == "My knee hurts on stairs."
    assert data["notes"][0]["body"] == "Prefers mornings"
    assert data["enrollments"][0]["campaign_slug"] == "stem-cell-therapy"
    assert {c["purpose"] for c in data["consents"]} >= {"email_marketing"}


def _text_columns():
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, String | Text):
                yield table, column


def _outbox_texts(app) -> dict[str, str]:
    """Every outbox file as its raw bytes and its decoded headers and parts, lowercased."""
    out = {}
    for path in sorted(Path(app.config["OUTBOX_DIR"]).glob("*.eml")):
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        parts = [str(message)] + [p.get_content() for p in message.walk() if p.get_content_maintype() == "text"]
        out[path.name] = "\n".join([path.read_bytes().decode("utf-8", "replace"), *parts]).lower()
    return out


def test_erase_leaves_no_email_or_name_in_any_table_or_the_outbox(staff, make_lead, app, clock):
    from nurture.dispatch import tick

    app.config.update(INTAKE_EMAILS=["desk@nexgenesis.example"], INTAKE_DIGEST="daily")
    lead_id = make_lead(
        "zelda.quartermain@example.com",
        first_name="Zelda",
        last_name="Quartermain",
        utm_source="zelda-quartermain-blog",
        utm_campaign="from zelda",
    )
    make_lead("keep.me@example.com", first_name="Keep")
    staff.post(f"/admin/leads/{lead_id}/notes", {"body": "Zelda Quartermain called back"})
    with app.app_context():
        tick()  # the welcome email and the front-desk alerts: deliveries in the ledger and files in the outbox
        assert db.session.scalars(select(Delivery).where(Delivery.lead_id == lead_id)).first() is not None
    clock.advance(days=1)
    with app.app_context():
        tick()  # records the digest of the signup day
        tick()  # and sends it
    needles = ("zelda.quartermain@example.com", "zelda", "quartermain")
    assert any("zelda" in text for text in _outbox_texts(app).values())
    assert "zelda" in staff.get("/admin/outbox").get_data(as_text=True).lower()
    kept = [name for name, text in _outbox_texts(app).items() if "keep.me@example.com" in text]
    assert kept  # the other lead's welcome

    page = staff.get(f"/admin/leads/{lead_id}/erase")
    assert "cannot be undone" in page.get_data(as_text=True)
    refused = staff.post(f"/admin/leads/{lead_id}/erase", {"confirm": "yes"})
    assert refused.status_code == 400
    response = staff.post(f"/admin/leads/{lead_id}/erase", {"confirm": "ERASE"})
    assert response.status_code == 302
    with app.app_context():
        with db.engine.connect() as conn:
            for table, column in _text_columns():
                for value in conn.execute(select(column).where(column.is_not(None))).scalars():
                    low = str(value).lower()
                    assert not any(n in low for n in needles), f"{table.name}.{column.name} still holds {value!r}"
        lead = db.session.get(Lead, lead_id)
        assert lead.erased_at is not None
        assert db.session.scalars(select(Note).where(Note.lead_id == lead_id)).first() is None
        assert db.session.scalars(select(Lead).where(Lead.email == "keep.me@example.com")).one()
    for name, text in _outbox_texts(app).items():
        assert not any(n in text for n in needles), f"outbox {name} still holds the erased lead"
    assert set(kept) <= set(_outbox_texts(app))  # other people's mail stays
    listing = staff.get("/admin/outbox").get_data(as_text=True).lower()
    assert not any(n in listing for n in needles)
    assert staff.get(f"/admin/leads/{lead_id}").status_code == 200


def test_missing_lead_is_404(staff):
    assert staff.get("/admin/leads/999999").status_code == 404
    assert staff.post("/admin/leads/999999/status", {"status": "booked"}).status_code == 404


def test_waiting_time_is_shown_on_the_lead_page(staff, make_lead, clock):
    lead_id = make_lead()
    clock.advance(timedelta(days=3, hours=1))
    assert "waiting 3 days" in staff.get(f"/admin/leads/{lead_id}").get_data(as_text=True)
