"""One way to make each thing a test needs: leads (through the real capture service), deliveries, staff users,
and fresh reads of what the app stored."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from admin.users import create_user
from core.db import db
from leads.services import capture_lead
from mailer.models import Delivery
from nurture.models import Enrollment

PASSWORD = "correct horse battery staple"
STAFF_EMAIL = "admin@nexgenesis.example"
# Where a signup came from, as the form posts it (the rest of the fields are the visitor's answers).
META_FIELDS = frozenset(
    {"landing_slug", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "referrer", "user_agent"}
)
# A signup with every answer given, as staff see most leads.
FULL_SIGNUP: dict[str, Any] = {
    "first_name": "Dana",
    "last_name": "Whitfield",
    "phone": "+13035550123",
    "interest": "knee",
    "preferred_contact": "phone",
    "message": "My knee hurts on stairs.",
    "utm_source": "google",
    "utm_medium": "cpc",
    "utm_campaign": "knee-pain-search",
    "referrer": "https://www.google.com/",
    "user_agent": "pytest",
}


def make_lead(app: Flask, email: str = "ana@example.org", *, consent: bool = True, **fields: Any) -> int:
    """A signup stored through leads.services.capture_lead, as the form stores it; returns the lead id.

    `fields` are the visitor's answers (first_name, interest, phone, message, timezone...) and where the signup
    came from (landing_slug, utm_*, referrer, user_agent). Defaults: Ana, knee, the stem cell page, no phone.
    """
    given = {name: fields.pop(name) for name in list(fields) if name in META_FIELDS}
    meta = {"landing_slug": "stem-cell-therapy"} | given
    data = {
        "email": email,
        "first_name": "Ana",
        "interest": "knee",
        "message": "My left knee hurts when I climb stairs",
        "email_consent": consent,
        "privacy_ack": True,
    } | fields
    with app.app_context(), db.write_transaction() as session:
        return capture_lead(session, data, meta).lead.id


def make_delivery(app: Flask, key: str, **fields: Any) -> int:
    """A delivery (a stem-cell-therapy welcome email, pending, unless told otherwise); returns its id."""
    values = {"kind": "nurture", "campaign_slug": "stem-cell-therapy", "step_id": "welcome", "state": "pending"}
    with app.app_context(), db.write_transaction() as session:
        delivery = Delivery(dedupe_key=key, **(values | fields))
        session.add(delivery)
        session.flush()
        return delivery.id


def make_user(app: Flask, email: str = STAFF_EMAIL, password: str = PASSWORD, role: str = "admin") -> str:
    """An active staff user; returns its email."""
    with app.app_context(), db.write_transaction() as session:
        create_user(session, email, password, role=role)
    return email


def rows(model: type, *where: Any) -> list:
    """All rows of a model matching the conditions, fresh from the database (call inside an app context)."""
    session = db.session()
    session.expire_all()
    found = list(session.scalars(select(model).where(*where)))
    session.expunge_all()  # detached but loaded: readable after the app context ends
    return found


def deliveries(app: Flask) -> list[Delivery]:
    """Every delivery, oldest first."""
    with app.app_context():
        found = rows(Delivery)
        db.session.commit()
    return sorted(found, key=lambda delivery: delivery.id)


def enrollment_of(app: Flask, lead_id: int) -> Enrollment | None:
    """The lead's (only) enrollment."""
    with app.app_context():
        found = rows(Enrollment, Enrollment.lead_id == lead_id)
        db.session.commit()
    return found[0] if found else None
