"""capture_lead in two halves: prepare_signup (no database) before the write lock, store_signup inside it."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.db import db
from leads import services
from leads.models import Consent, Lead, Submission

DATA = {
    "first_name": "Odile",
    "email": " Odile.Marchetti@Example.net ",
    "phone": "+13035550142",
    "interest": "hip",
    "email_consent": True,
    "privacy_ack": True,
}
META = {"landing_slug": "stem-cell-therapy", "utm_source": "radio"}


@pytest.fixture
def app(app):
    """Called like the signup view calls them, inside an app context."""
    with app.app_context():
        yield app


def test_prepare_refuses_a_bad_email_before_touching_the_database(app):
    with pytest.raises(ValueError, match=r"."):
        services.prepare_signup({**DATA, "email": "odile@"}, META)
    assert db.session.scalar(select(func.count()).select_from(Lead)) == 0


def test_prepared_signup_is_stored_like_capture_lead_stores_it(app):
    signup = services.prepare_signup(DATA, META)
    assert signup.email == "odile.marchetti@example.net"
    assert signup.timezone == "America/Denver"
    with db.write_transaction() as session:
        result = services.store_signup(session, signup)
    assert result.created is True
    db.session.expunge_all()
    lead = db.session.scalars(select(Lead)).one()
    assert (lead.id, lead.email, lead.email_opt_in, lead.source) == (result.lead.id, signup.email, True, "radio")
    assert result.lead.created_at == lead.created_at
    assert [s.id for s in lead.submissions] == [result.submission.id]
    assert sorted(c.purpose for c in lead.consents) == ["email_marketing", "privacy_notice"]
    assert {c.submission_id for c in lead.consents} == {result.submission.id}


def test_repeat_signup_shows_in_collections_loaded_earlier_in_the_session(app):
    with db.write_transaction() as session:
        first = services.capture_lead(session, DATA, META)
    lead = db.session.get(Lead, first.lead.id)
    assert len(lead.submissions) == 1
    with db.write_transaction() as session:
        second = services.capture_lead(session, {**DATA, "email_consent": False}, {**META, "utm_source": "tv"})
    assert second.lead is lead
    assert [s.utm_source for s in lead.submissions] == ["radio", "tv"]
    assert len(lead.consents) == 3
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 2
    assert db.session.scalar(select(func.count()).select_from(Consent)) == 3
