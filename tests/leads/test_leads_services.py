"""capture_lead, change_status, add_note and erase_lead, called the way other packages call them."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import String, Text, func, select

from core import signals
from core.db import Base, db
from leads import services
from leads.models import Consent, Lead, Note, StatusChange, Submission

DATA = {
    "first_name": "Zebulon",
    "last_name": "Quillfeather",
    "email": "Zebulon.Q@Example.org",
    "phone": "+13035550199",
    "interest": "spine",
    "preferred_contact": "phone",
    "message": "Lower back pain for two years.",
    "email_consent": True,
    "privacy_ack": True,
}
META = {"landing_slug": "stem-cell-therapy", "utm_source": "google", "utm_term": "back pain", "user_agent": "UA/1"}


@pytest.fixture
def app(app):
    """These tests call the services directly, inside an app context like a command or job does."""
    with app.app_context():
        yield app


def capture(data=None, meta=None) -> services.CaptureResult:
    with db.write_transaction() as session:
        return services.capture_lead(session, data or DATA, meta or META)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("  Ann@Example.COM ", "ann@example.com"), ("j.doe+clinic@mail.example.org", "j.doe+clinic@mail.example.org")],
)
def test_normalize_email(raw, expected):
    assert services.normalize_email(raw) == expected


@pytest.mark.parametrize("raw", ["", "ann", "ann@", "ann@@example.com", "a b@example.com", "x" * 330 + "@example.com"])
def test_normalize_email_refuses_malformed(raw):
    with pytest.raises(ValueError, match=r"."):
        services.normalize_email(raw)


def test_capture_announces_the_lead_inside_the_transaction(app):
    seen = []

    def receiver(sender, **kwargs):
        seen.append(kwargs)
        # Receivers add to the same session; the capture commits their rows with its own.
        kwargs["session"].add(Note(lead_id=kwargs["lead"].id, body="from receiver"))

    with signals.lead_captured.connected_to(receiver, sender=app):
        result = capture()
    assert result.created is True
    assert result.consented is True
    # Receivers read the rows just written (no ORM objects on the signup's hot path): the same lead and submission.
    assert (seen[0]["lead"].id, seen[0]["lead"].email) == (result.lead.id, result.lead.email)
    assert (seen[0]["lead"].source, seen[0]["lead"].created_at) == (result.lead.source, result.lead.created_at)
    assert seen[0]["submission"].id == result.submission.id
    assert seen[0]["submission"].lead_id == result.lead.id
    assert seen[0]["campaign"].slug == "stem-cell-therapy"
    assert (seen[0]["created"], seen[0]["consented"]) == (True, True)
    assert db.session.scalar(select(func.count()).select_from(Note)) == 1


def test_failing_receiver_rolls_back_the_whole_capture(app):
    def receiver(sender, **kwargs):
        raise RuntimeError("alerts broke")

    with signals.lead_captured.connected_to(receiver, sender=app), pytest.raises(RuntimeError):
        capture()
    assert db.session.scalar(select(func.count()).select_from(Lead)) == 0


def test_repeat_capture_keeps_the_leads_details_and_records_the_answers_on_the_submission(app):
    """Anyone can type someone else's email: a repeat signup must not replace their name, phone or preference."""
    first = capture()
    second = capture(
        {
            "email": "zebulon.q@example.org",
            "first_name": "Mallory",
            "last_name": "Attacker",
            "phone": "+13035550142",
            "interest": "hip",
            "preferred_contact": "text",
            "privacy_ack": True,
        },
        {"landing_slug": "stem-cell-therapy", "utm_source": "newsletter"},
    )
    assert second.created is False
    assert second.consented is False
    assert second.lead.id == first.lead.id
    lead = db.session.get(Lead, first.lead.id)
    assert (lead.first_name, lead.last_name, lead.phone) == ("Zebulon", "Quillfeather", "+13035550199")
    assert (lead.preferred_contact, lead.interest) == ("phone", "spine")
    assert lead.source == "google"
    assert lead.email_opt_in is True
    assert lead.timezone == "America/Denver"
    latest = lead.submissions[-1]
    assert [s.utm_source for s in lead.submissions] == ["google", "newsletter"]
    assert (latest.first_name, latest.last_name, latest.phone) == ("Mallory", "Attacker", "+13035550142")
    assert (latest.preferred_contact, latest.interest) == ("text", "hip")
    assert services.detail_differences(lead, latest) == {
        "first_name": ("Zebulon", "Mallory"),
        "last_name": ("Quillfeather", "Attacker"),
        "phone": ("+13035550199", "+13035550142"),
        "preferred_contact": ("phone", "text"),
        "interest": ("spine", "hip"),
    }
    assert services.detail_differences(lead, lead.submissions[0]) == {}


def test_accepting_a_requests_details_changes_the_lead_and_records_who(app):
    from admin.users import create_user

    capture()
    capture({**DATA, "first_name": "Zeb", "last_name": None, "phone": "+442079460958"})
    with db.write_transaction() as session:
        user = create_user(session, "desk@nexgenesis.example", "correct horse battery", "marketer")
        lead = session.scalars(select(Lead)).one()
        [(submission, differences)] = services.pending_details(session, lead)
        assert set(differences) == {"first_name", "phone"}  # a blank last name is no difference
        changed = services.accept_details(session, lead, submission, user)
        assert changed == ["first_name", "phone"]
        user_id = user.id
    lead = db.session.scalars(select(Lead)).one()
    assert (lead.first_name, lead.last_name, lead.phone) == ("Zeb", "Quillfeather", "+442079460958")
    assert lead.timezone == "Europe/London"  # follows the accepted number
    submission = lead.submissions[-1]
    assert submission.details_accepted_at is not None
    assert submission.details_accepted_by_id == user_id
    assert services.pending_details(db.session, lead) == []


def test_source_falls_back_to_referrer_host_then_direct(app):
    lead = capture({**DATA, "email": "a@example.org"}, {"landing_slug": "x", "referrer": "https://www.bing.com/s?q=1"})
    assert lead.lead.source == "www.bing.com"
    assert capture({**DATA, "email": "b@example.org"}, {"landing_slug": "x"}).lead.source == "direct"


def test_change_status_records_history_and_announces(app):
    lead = capture().lead
    seen = []
    with (
        db.write_transaction() as session,
        signals.lead_status_changed.connected_to(lambda sender, **kw: seen.append(kw), sender=app),
    ):
        lead = session.get(Lead, lead.id)
        assert services.change_status(session, lead, "contacted", source="admin") is True
        assert services.change_status(session, lead, "contacted", source="admin") is False
    lead = db.session.get(Lead, lead.id)
    assert lead.status == "contacted"
    assert lead.contacted_at is not None
    assert lead.status_changed_at is not None
    change = db.session.scalars(select(StatusChange)).one()
    assert (change.old_status, change.new_status, change.source) == ("new", "contacted", "admin")
    assert [(s["old_status"], s["new_status"]) for s in seen] == [("new", "contacted")]


def test_change_status_refuses_unknown_status(app):
    lead = capture().lead
    with db.write_transaction() as session, pytest.raises(ValueError, match="not a lead status"):
        services.change_status(session, session.get(Lead, lead.id), "vip", source="admin")


def test_add_note_refuses_empty_text(app):
    lead = capture().lead
    with db.write_transaction() as session:
        note = services.add_note(session, session.get(Lead, lead.id), "  Called, no answer. ", None)
        assert note.body == "Called, no answer."
        with pytest.raises(ValueError, match="needs some text"):
            services.add_note(session, session.get(Lead, lead.id), "   ", None)


def _text_columns():
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, String | Text):
                yield table, column


def test_erase_leaves_no_trace_of_email_or_name_in_any_table(app):
    from alerts.models import WebhookEvent
    from mailer.models import Delivery, ProviderEvent, Suppression, email_hash
    from nurture.models import Enrollment

    # UTM tags are the visitor's free text: a link may carry their name.
    lead = capture(meta={**META, "utm_campaign": "zebulon-fans", "utm_content": "Quillfeather"}).lead
    capture({**DATA, "first_name": "Zebulon", "message": "Still hurts"})
    other = capture(
        {
            **DATA,
            "email": "someone.else@example.org",
            "first_name": "Other",
            "last_name": "Person",
            "phone": None,
            "message": "Shoulder",
        },
        {"landing_slug": "stem-cell-therapy"},
    ).lead
    email = "zebulon.q@example.org"
    with db.write_transaction() as s:
        services.add_note(s, s.get(Lead, lead.id), "Zebulon Quillfeather asked about spine", None)
        s.add(Suppression(email=email, email_hash=email_hash(email), reason="bounce", source="provider", detail=email))
        # The nurture package may already have enrolled the lead when it was captured.
        enrollment = s.scalars(select(Enrollment).where(Enrollment.lead_id == lead.id)).first()
        if enrollment is None:
            enrollment = Enrollment(lead_id=lead.id, campaign_slug="stem-cell-therapy", state="active")
            s.add(enrollment)
            s.flush()
        delivery = Delivery(
            dedupe_key="test:erase-me",
            lead_id=lead.id,
            enrollment_id=enrollment.id,
            recipient=email,
            state="pending",
            error=f"550 {email} mailbox full",
        )
        s.add(delivery)
        s.flush()
        s.add(
            ProviderEvent(
                sg_event_id="ev1",
                event="bounce",
                delivery_id=delivery.id,
                occurred_at=delivery.created_at,
                reason=f"550 <{email}> unknown",
                url=f"https://x.example/?e={email}",
            )
        )
        payload = json.dumps({"email": email, "first_name": "Zebulon", "last_name": "Quillfeather"})
        s.add(
            WebhookEvent(
                event_id="w1", event_type="lead.created", url="https://hook.example", lead_id=lead.id, payload=payload
            )
        )

    with db.write_transaction() as s:
        services.erase_lead(s, s.get(Lead, lead.id))

    secrets = [email, "Zebulon", "Quillfeather", "+13035550199", "Lower back pain", "back pain"]
    with db.engine.connect() as conn:
        for table, column in _text_columns():
            for secret in secrets:
                hits = conn.execute(
                    select(func.count()).select_from(table).where(column.ilike(f"%{secret}%"))
                ).scalar_one()
                assert hits == 0, f"{table.name}.{column.name} still holds {secret!r}"

    erased = db.session.get(Lead, lead.id)
    assert erased.erased_at is not None
    assert erased.display_name == f"Erased lead #{lead.id}"
    assert erased.source == "(erased)"  # was "google", from the visitor's link
    # Anonymous counts survive: the lead row, its submissions with their source and consents.
    assert db.session.scalar(select(func.count()).select_from(Submission).where(Submission.lead_id == lead.id)) == 2
    assert db.session.scalar(select(func.count()).select_from(Consent).where(Consent.lead_id == lead.id)) == 4
    assert db.session.scalar(select(func.count()).select_from(Note)) == 0
    assert db.session.scalars(select(Suppression)).one().email_hash == email_hash(email)
    enrollment = db.session.scalars(select(Enrollment).where(Enrollment.lead_id == lead.id)).one()
    assert (enrollment.state, enrollment.exit_reason, enrollment.next_send_at) == ("exited", "erased", None)
    assert db.session.scalars(select(Delivery).where(Delivery.dedupe_key == "test:erase-me")).one().state == "skipped"
    pending = select(Delivery).where(Delivery.lead_id == lead.id, Delivery.state.in_(("pending", "retrying")))
    assert db.session.scalars(pending).all() == []
    assert db.session.scalars(select(WebhookEvent)).one().state == "failed"
    # Other people's data is untouched.
    assert db.session.get(Lead, other.id).email == "someone.else@example.org"
    assert db.session.get(Lead, other.id).first_name == "Other"
