"""Addresses and names that are valid but awkward: internationalised domains, bidirectional overrides."""

from __future__ import annotations

import csv
import io
from email import policy
from email.parser import BytesParser
from pathlib import Path

from sqlalchemy import select

from core.db import db
from leads import services
from leads.models import Lead, Submission
from mailer.base import Message
from mailer.senders import sendgrid_body
from nurture.dispatch import tick
from tests.support.forms import field_error

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "Ada\u202egnp.exe" shows as "Adaexe.png"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def _outbox(app) -> list:
    folder = Path(app.config["OUTBOX_DIR"])
    return [BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in sorted(folder.glob("*.eml"))]


def test_an_internationalised_domain_is_stored_and_sent_in_its_ascii_form(app, visitor):
    response = visitor.submit(email="Ana@Exämple.com")
    assert response.status_code == 303
    with app.app_context():
        lead = db.session.scalars(select(Lead)).one()
        assert lead.email == "ana@xn--exmple-cua.com"
        tick()
    [welcome] = [m for m in _outbox(app) if "ana@" in str(m["To"])]
    to = welcome["To"]
    assert not to.defects, to.defects
    assert [(a.username, a.domain) for a in to.addresses] == [("ana", "xn--exmple-cua.com")]
    assert str(to) == "ana@xn--exmple-cua.com"
    # The same person typing either form is one lead.
    visitor.open()
    assert visitor.submit(email="ana@xn--exmple-cua.com").status_code == 303
    with app.app_context():
        assert db.session.scalars(select(Lead.email)).all() == ["ana@xn--exmple-cua.com"]


def test_an_address_with_letters_outside_ascii_before_the_at_is_refused_clearly(app, visitor):
    response = visitor.submit(email="josé@example.com")
    assert response.status_code == 400
    error = field_error(response.get_data(as_text=True), "email")
    assert "accents or non-Latin letters before the @" in (error or "")
    with app.app_context():
        assert db.session.scalars(select(Lead)).first() is None


def test_every_sender_gets_an_ascii_address_even_for_rows_stored_before(app):
    message = Message(to="old@exämple.com", subject="Hi", text="t\n", html="<p>t</p>", from_email="care@example.org")
    with app.app_context():
        assert sendgrid_body(message)["personalizations"] == [{"to": [{"email": "old@xn--exmple-cua.com"}]}]
        from mailer.senders import to_mime

        assert str(to_mime(message)["To"]) == "old@xn--exmple-cua.com"


def test_bidirectional_overrides_are_stripped_from_what_a_visitor_types(app, visitor):
    response = visitor.submit(
        first_name=f"Ada{RLO}gnp.exe",
        last_name=f"{BIDI}Love{BIDI}lace",
        message=f"Knee{RLO} pain\nsince {BIDI}May",
        utm_source=f"goo{RLO}gle",
    )
    assert response.status_code == 303
    with app.app_context():
        lead = db.session.scalars(select(Lead)).one()
        submission = db.session.scalars(select(Submission)).one()
    assert (lead.first_name, lead.last_name, lead.source) == ("Adagnp.exe", "Lovelace", "google")
    assert submission.message == "Knee pain\nsince May"


def test_other_capture_paths_strip_them_too(app):
    with app.app_context(), db.write_transaction() as session:
        result = services.capture_lead(
            session,
            {"email": "cli@example.com", "first_name": f"{RLO}Eve", "last_name": f"Doe{RLO}", "privacy_ack": True},
            {"landing_slug": "stem-cell-therapy", "utm_campaign": f"spring{RLO}"},
        )
        assert (result.lead.first_name, result.lead.last_name) == ("Eve", "Doe")
        assert result.submission.utm_campaign == "spring"


def _legacy_lead(app, **fields) -> int:
    """A lead stored before capture cleaned names: the override is in the row."""
    with app.app_context(), db.write_transaction() as session:
        lead = Lead(email="legacy@example.com", first_name=f"Eve{RLO}lyn", last_name=f"{RLO}Moss", **fields)
        session.add(lead)
        session.flush()
        return lead.id


def test_names_stored_before_are_cleaned_where_they_reach_a_csv_or_a_subject(app, client):
    from admin.export import all_rows as export_rows
    from nurture.composers import email_context

    lead_id = _legacy_lead(app, email_opt_in=True)
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert email_context(lead)["first_name"] == "Evelyn"
        rows = list(export_rows(db.session))
    assert not any(RLO in cell for row in rows for cell in row)
    assert [c for c in rows[-1] if c in ("Evelyn", "Moss")] == ["Evelyn", "Moss"]
    # The admin's CSV export, signed in.
    from tests.support.factories import make_user
    from tests.support.staff import login

    make_user(app)
    assert login(client).status_code == 302
    body = client.get("/admin/leads/export.csv").get_data(as_text=True)
    cells = [cell for row in csv.reader(io.StringIO(body)) for cell in row]
    assert "Evelyn" in cells
    assert "Moss" in cells
    assert RLO not in body


def test_the_front_desk_alert_subject_has_no_override_from_an_old_row(app, make_config):
    from app import create_app

    alerting = create_app(make_config(INTAKE_EMAILS=["desk@clinic.example"]))
    with alerting.app_context(), db.write_transaction() as session:
        lead_id = services.capture_lead(
            session, {"email": "legacy@example.com", "first_name": "Evelyn"}, {"landing_slug": "stem-cell-therapy"}
        ).lead.id
    with alerting.app_context(), db.write_transaction() as session:
        session.get(Lead, lead_id).first_name = f"Eve{RLO}lyn"  # as a row stored before capture cleaned names
    with alerting.app_context():
        tick()
    [alert] = [m for m in _outbox(alerting) if "desk@clinic.example" in str(m["To"])]
    assert "Evelyn" in str(alert["Subject"])
    assert RLO not in str(alert["Subject"])
    assert RLO not in alert.get_body(("plain",)).get_content()


def test_the_migration_cleans_rows_stored_before(tmp_path):
    """Addresses with a Unicode domain become ASCII (unless that is another lead's), names lose overrides."""
    from sqlalchemy import text

    from app import load_models
    from core.db import make_engine, upgrade

    load_models()
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "1ec0efb5dd6b")
    now = "2026-11-01 10:00:00"
    rows = [
        {"email": "ana@exämple.com", "first_name": f"Ana{RLO}", "last_name": f"{RLO}Ruiz"},
        {"email": "bo@exämple.com", "first_name": "Bo", "last_name": None},
        {"email": "bo@xn--exmple-cua.com", "first_name": "Bo", "last_name": None},
    ]
    with engine.begin() as conn:
        for row in rows:
            conn.execute(
                text(
                    "INSERT INTO leads (email, first_name, last_name, preferred_contact, status, source, email_opt_in,"
                    " created_at, updated_at) VALUES (:email, :first_name, :last_name, 'email', 'new', 'direct', 0,"
                    " :now, :now)"
                ),
                {**row, "now": now},
            )
    upgrade(engine)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT email, first_name, last_name FROM leads ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in stored] == [
        ("ana@xn--exmple-cua.com", "Ana", "Ruiz"),
        ("bo@exämple.com", "Bo", None),  # its ASCII form is another lead's: senders convert it when they send
        ("bo@xn--exmple-cua.com", "Bo", None),
    ]
