"""Helpers for alert tests: signup through the form, a worker tick, the outbox, a webhook receiver, login."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from core.db import db
from tests.support.forms import hidden_fields

SLUG = "stem-cell-therapy"
INTAKE = ["frontdesk@clinic.example", "manager@clinic.example"]
SECRET = "whsec-test-0123456789"
INTEREST_LABEL = "Knee"
MESSAGE = "My left knee hurts when I climb stairs since the accident."

FORM = {
    "first_name": "Dana",
    "last_name": "Whitfield",
    "email": "dana.whitfield@example.com",
    "phone": "(303) 555-0123",
    "interest": "knee",
    "preferred_contact": "phone",
    "message": MESSAGE,
    "email_consent": "y",
    "privacy_ack": "y",
}


def signup(client: FlaskClient, query: str = "", **overrides: str) -> None:
    """Fill in the landing page's form like a visitor and check it was accepted."""
    page = client.get(f"/{SLUG}{query}")
    assert page.status_code == 200
    data = {**hidden_fields(page.get_data(as_text=True)), **FORM, **overrides}
    response = client.post(f"/{SLUG}{query}", data=data)
    assert response.status_code in (200, 302, 303), response.get_data(as_text=True)[:500]
    assert "error" not in response.headers.get("Location", "")


def tick(app: Flask) -> None:
    """One pass of the nurture worker: `flask nurture tick` (sends deliveries, then runs the tick tasks)."""
    result = app.test_cli_runner().invoke(args=["nurture", "tick"])
    assert result.exit_code == 0, result.output


def outbox(app: Flask) -> list[email.message.EmailMessage]:
    """The emails the outbox sender wrote, oldest first."""
    folder = Path(app.config["OUTBOX_DIR"])
    if not folder.exists():
        return []
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(folder.glob("*.eml"))
    ]


def mails_to(app: Flask, address: str) -> list[email.message.EmailMessage]:
    """Emails in the outbox addressed to `address`."""
    return [m for m in outbox(app) if address in str(m["To"])]


def full_text(message: email.message.EmailMessage) -> str:
    """Subject, headers and every part's content, for 'never contains' checks."""
    parts = [str(message)]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
    return "\n".join(parts)


def rows(model: type, *where: object) -> list:
    """All rows of a model matching the conditions (fresh from the database)."""
    session = db.session()
    session.expire_all()
    result = list(session.scalars(select(model).where(*where)))
    session.expunge_all()  # detached but loaded: readable after the app context ends
    return result


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1 that records requests and answers with queued statuses (then 200)."""

    server: ThreadingHTTPServer
    requests: list[dict] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    hang: threading.Event | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks"

    def bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]


def login(client: FlaskClient, app: Flask, email_address: str = "staff@clinic.example") -> None:
    """Sign a staff member in the way Flask-Login's session does (the admin's login form is tested there)."""
    from flask_login.utils import _create_identifier

    from admin.models import User

    with app.app_context():
        user = User(email=email_address, password_hash="not-a-real-hash", role="marketer", active=True)
        db.session.add(user)
        db.session.commit()
        session_id = user.get_id()
    with app.test_request_context(environ_base=client.environ_base):
        identifier = _create_identifier()  # "strong" session protection ties the session to address and browser
    with client.session_transaction() as sess:
        sess["_user_id"] = session_id
        sess["_fresh"] = True
        sess["_id"] = identifier
