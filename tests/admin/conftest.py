"""Fixtures for admin tests: users, a signed-in client, leads captured the way the form stores them."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient

from admin.users import create_user
from core.db import db

PASSWORD = "correct horse battery"


def csrf_from(html: str) -> str:
    """The CSRF token rendered into a page."""
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


class Staff:
    """A signed-in member of staff: GETs pages and POSTs forms with the page's CSRF token."""

    def __init__(self, client: FlaskClient, email: str) -> None:
        self.client = client
        self.email = email
        self.token = ""

    def get(self, url: str, **kwargs):
        response = self.client.get(url, **kwargs)
        html = response.get_data(as_text=True)
        if 'name="csrf_token"' in html:
            self.token = csrf_from(html)
        return response

    def post(self, url: str, data: dict | None = None, **kwargs):
        if not self.token:
            self.get("/admin/")
        return self.client.post(url, data={"csrf_token": self.token, **(data or {})}, **kwargs)


def login(client: FlaskClient, email: str, password: str = PASSWORD):
    """Post the login form like a browser."""
    page = client.get("/admin/login")
    return client.post(
        "/admin/login",
        data={"csrf_token": csrf_from(page.get_data(as_text=True)), "email": email, "password": password},
    )


@pytest.fixture(autouse=True)
def _fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with small costs: production strength takes most of a second per hash on a busy CI machine."""
    import admin.users

    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(admin.users, "_hasher", fast)
    dummy = fast.hash("not-a-real-password-0000")
    monkeypatch.setattr(admin.users, "_dummy_hash", lambda: dummy)


@pytest.fixture
def make_user(app: Flask) -> Callable[..., str]:
    """Create a user; returns its email."""

    def factory(email: str = "admin@nexgenesis.example", role: str = "admin", password: str = PASSWORD) -> str:
        with app.app_context(), db.write_transaction() as s:
            create_user(s, email, password, role)
        return email

    return factory


@pytest.fixture
def staff(app: Flask, client: FlaskClient, make_user) -> Staff:
    """A signed-in admin."""
    email = make_user()
    assert login(client, email).status_code == 302
    return Staff(client, email)


@pytest.fixture
def marketer(app: Flask, client: FlaskClient, make_user) -> Staff:
    """A signed-in marketer."""
    email = make_user("mia@nexgenesis.example", role="marketer")
    assert login(client, email).status_code == 302
    return Staff(client, email)


@pytest.fixture
def make_lead(app: Flask) -> Callable[..., int]:
    """Store a signup through leads.services.capture_lead; returns the lead id."""
    from leads.services import capture_lead

    def factory(email: str = "dana@example.com", consent: bool = True, **fields: object) -> int:
        data = {
            "email": email,
            "first_name": fields.pop("first_name", "Dana"),
            "last_name": fields.pop("last_name", "Whitfield"),
            "phone": fields.pop("phone", "+13035550123"),
            "interest": fields.pop("interest", "knee"),
            "preferred_contact": "phone",
            "message": fields.pop("message", "My knee hurts on stairs."),
            "email_consent": consent,
            "privacy_ack": True,
        }
        meta = {
            "landing_slug": fields.pop("landing_slug", "stem-cell-therapy"),
            "utm_source": fields.pop("utm_source", "google"),
            "utm_medium": "cpc",
            "utm_campaign": fields.pop("utm_campaign", "knee-pain-search"),
            "referrer": "https://www.google.com/",
            "user_agent": "pytest",
        }
        with app.app_context(), db.write_transaction() as s:
            result = capture_lead(s, data, meta)
            return result.lead.id

    return factory


@pytest.fixture
def make_delivery(app: Flask) -> Callable[..., int]:
    """Store a delivery (a stem-cell-therapy welcome email unless told otherwise); returns its id."""
    from mailer.models import Delivery

    def factory(key: str, **fields: object) -> int:
        values = {"kind": "nurture", "campaign_slug": "stem-cell-therapy", "step_id": "welcome", "state": "pending"}
        with app.app_context(), db.write_transaction() as s:
            delivery = Delivery(dedupe_key=key, **(values | fields))
            s.add(delivery)
            s.flush()
            return delivery.id

    return factory
