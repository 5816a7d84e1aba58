"""Helpers for alert tests: signup through the form, a worker tick, the outbox, a webhook receiver."""

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

from tests.support.forms import Visitor

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
    visitor = Visitor(client)
    visitor.open(query)
    response = visitor.client.post(f"/{SLUG}{query}", data={**visitor.hidden, **FORM, **overrides})
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
