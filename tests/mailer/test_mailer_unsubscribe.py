"""One-click unsubscribe: a page with one button, RFC 8058 POST without cookies, tampered tokens refused."""

from __future__ import annotations

import re

from flask import current_app
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select

from core.db import db
from leads.models import Consent, Lead
from mailer.models import Delivery, Suppression
from mailer.suppression import is_suppressed
from mailer.tokens import make_token, read_token
from nurture.dispatch import tick
from nurture.models import Enrollment
from tests.support.database import fresh_app
from tests.support.factories import make_lead


def signup(email: str = "sam@example.com") -> int:
    """A consenting signup, from inside the test's app context."""
    return make_lead(current_app._get_current_object(), email, first_name="Sam", interest="hip")


def test_get_shows_one_button_and_changes_nothing(app, client):
    with app.app_context():
        lead_id = signup()
        token = make_token(lead_id)
    response = client.get(f"/unsubscribe/{token}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert len(re.findall(r"<button\b", page)) == 1
    assert re.search(rf'<form method="post" action="/unsubscribe/{re.escape(token)}"', page)
    assert "csrf_token" not in page
    with app.app_context():
        assert db.session.get(Lead, lead_id).unsubscribed_at is None
        assert not is_suppressed(db.session, "sam@example.com")


def test_one_click_post_without_cookies_unsubscribes_and_ends_enrollments(app, clock):
    with app.app_context():
        lead_id = signup()
        token = make_token(lead_id)
        assert db.session.scalars(select(Enrollment).where(Enrollment.lead_id == lead_id)).one().state == "active"
    client = app.test_client(use_cookies=False)
    response = client.post(
        f"/unsubscribe/{token}",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert "You are unsubscribed" in response.get_data(as_text=True)
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert lead.unsubscribed_at == clock.now()
        assert lead.email_opt_in is False
        assert is_suppressed(db.session, "SAM@example.com")
        row = db.session.scalars(select(Suppression)).one()
        assert (row.reason, row.source) == ("unsubscribe", "one_click")
        withdrawal = db.session.scalars(
            select(Consent).where(Consent.lead_id == lead_id, Consent.granted.is_(False))
        ).one()
        assert (withdrawal.purpose, withdrawal.source) == ("email_marketing", "one_click")
        enrollment = db.session.scalars(select(Enrollment).where(Enrollment.lead_id == lead_id)).one()
        assert enrollment.state not in ("pending", "active")
        # Nothing more leaves for this lead.
        tick()
        assert db.session.scalar(select(func.count()).select_from(Delivery).where(Delivery.state == "sent")) == 0


def test_the_page_button_works_and_repeating_is_harmless(app, client):
    with app.app_context():
        lead_id = signup()
        token = make_token(lead_id)
    for _ in range(2):
        response = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click", "via": "page"})
        assert response.status_code == 200
    assert "You are unsubscribed" in client.get(f"/unsubscribe/{token}").get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Suppression)) == 1
        assert db.session.scalars(select(Suppression)).one().source == "link"
        withdrawals = db.session.scalar(
            select(func.count()).select_from(Consent).where(Consent.lead_id == lead_id, Consent.granted.is_(False))
        )
        assert withdrawals == 1


def test_a_tampered_token_gets_a_400_page_and_changes_nothing(app, client):
    with app.app_context():
        lead_id = signup()
        token = make_token(lead_id)
    payload, _, signature = token.rpartition(".")
    tampered = [
        payload + "." + signature[:-2] + ("AA" if not signature.endswith("AA") else "BB"),
        "not-a-token",
        "x" * 300,
    ]
    for bad in tampered:
        assert client.get(f"/unsubscribe/{bad}").status_code == 400
        response = client.post(f"/unsubscribe/{bad}", data="List-Unsubscribe=One-Click")
        assert response.status_code == 400
        assert "not valid" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Lead, lead_id).unsubscribed_at is None
        assert db.session.scalar(select(func.count()).select_from(Suppression)) == 0


def test_tokens_never_expire_and_name_one_lead(app, clock):
    with app.app_context():
        token = make_token(42)
        clock.advance(days=3650)
        assert read_token(token) == 42
        assert read_token(make_token(43)) == 43
        assert token != make_token(43)


def test_links_in_sent_emails_keep_working_after_the_key_is_rotated(make_config):
    """Tokens are itsdangerous's own bytes; after a rotation (SECRET_KEY_FALLBACKS) the old key's links still read."""
    old_token = URLSafeSerializer("the-old-key", salt="unsubscribe").dumps({"lead": 42})
    config = make_config(SECRET_KEY="the-new-key")
    config.SECRET_KEY_FALLBACKS = ["the-old-key"]
    for rotated in fresh_app(config):
        with rotated.app_context():
            assert read_token(old_token) == 42
            assert make_token(42) == URLSafeSerializer("the-new-key", salt="unsubscribe").dumps({"lead": 42})
            assert read_token(URLSafeSerializer("another-key", salt="unsubscribe").dumps({"lead": 42})) is None
    for plain in fresh_app(make_config(SECRET_KEY="the-new-key")):
        with plain.app_context():
            assert read_token(old_token) is None  # without the fallback, the old key is no longer ours


def test_a_token_for_a_deleted_lead_still_answers_calmly(app):
    client = app.test_client(use_cookies=False)
    with app.app_context():
        token = make_token(999_999)
    assert client.post(f"/unsubscribe/{token}", data="List-Unsubscribe=One-Click").status_code == 200
