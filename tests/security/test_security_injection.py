"""SQL metacharacters and CRLF in every form field: stored as typed or refused with 400, never in an email header."""

from __future__ import annotations

import email
import itertools
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.db import db
from leads.models import Lead, Submission
from tests.support.forms import SLUG, VALID, signup_data, signup_form

SQL_PAYLOADS = ["' OR 1=1 --", "x'); DROP TABLE leads; --", "; DROP TABLE leads;", '" OR ""="', "1; SELECT pg_sleep(5)"]
CRLF = "Eve\r\nBcc: victim@evil.example\r\nX-Injected: yes"

# Where each form field ends up, so the test can read back what was stored.
STORED_ON_LEAD = {"first_name": "first_name", "last_name": "last_name"}
STORED_ON_SUBMISSION = {
    "message": "message",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "utm_term": "utm_term",
    "utm_content": "utm_content",
    "referrer": "referrer",
}
# Fields with a fixed shape: anything else must be refused, not stored.
SHAPED = ("email", "phone", "interest", "preferred_contact")
FREE = (*STORED_ON_LEAD, *STORED_ON_SUBMISSION, "tz", "landing")


_visitors = itertools.count(1)


def _post(client, field: str, value: str, address: str):
    form = signup_form(client)
    data = signup_data(form, email=address)
    data[field] = value
    # Each post from its own address, so the per-IP signup limit never answers in place of validation.
    n = next(_visitors)
    return client.post(
        f"/{SLUG}", data=data, environ_base={"REMOTE_ADDR": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"}
    )


def _stored(field: str, address: str) -> str | None:
    db.session.rollback()
    lead = db.session.scalars(select(Lead).where(Lead.email == address)).one()
    if field in STORED_ON_LEAD:
        return getattr(lead, STORED_ON_LEAD[field])
    submission = db.session.scalars(select(Submission).where(Submission.lead_id == lead.id)).one()
    return getattr(submission, STORED_ON_SUBMISSION[field])


@pytest.mark.parametrize("payload", SQL_PAYLOADS)
def test_sql_metacharacters_in_free_text_fields_are_stored_as_typed(app, client, payload):
    with app.app_context():
        for n, field in enumerate(FREE):
            address = f"sql{n}@example.com"
            response = _post(client, field, payload, address)
            assert response.status_code in (303, 400), f"{field}: {response.status_code}"
            if response.status_code == 303 and (field in STORED_ON_LEAD or field in STORED_ON_SUBMISSION):
                assert _stored(field, address) == payload, f"{field} was not stored as typed"
        # The tables are intact and hold exactly the accepted signups.
        assert db.session.scalar(select(func.count()).select_from(Lead)) == len(FREE)


@pytest.mark.parametrize("payload", [*SQL_PAYLOADS, CRLF])
def test_sql_and_crlf_in_shaped_fields_are_refused(app, client, payload):
    with app.app_context():
        for field in SHAPED:
            value = VALID["email"] + payload if field == "email" else payload
            response = _post(client, field, value, "shaped@example.com")
            assert response.status_code == 400, f"{field}={value!r} answered {response.status_code}"
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(Lead)) == 0


def test_crlf_in_one_line_fields_never_survives(app, client):
    with app.app_context():
        for n, field in enumerate(FREE):
            address = f"crlf{n}@example.com"
            response = _post(client, field, CRLF, address)
            assert response.status_code in (303, 400), f"{field}: {response.status_code}"
            if (
                response.status_code == 303
                and field != "message"
                and field in {**STORED_ON_LEAD, **STORED_ON_SUBMISSION}
            ):
                stored = _stored(field, address) or ""
                assert "\r" not in stored, f"{field} kept a CR: {stored!r}"
                assert "\n" not in stored, f"{field} kept a LF: {stored!r}"


def test_crlf_never_reaches_an_email_header(app, client):
    """A name built to inject headers, then a tick: the welcome email has exactly the headers we wrote."""
    form = signup_form(client)
    data = signup_data(
        form,
        email="eve@example.com",
        first_name=CRLF,
        last_name="Doe\r\nSubject: you won",
        utm_source="ads\r\nX-Injected: utm",
        utm_campaign="spring\nBcc: utm@evil.example",
    )
    assert client.post(f"/{SLUG}", data=data).status_code == 303
    result = app.test_cli_runner().invoke(args=["nurture", "tick"])
    assert result.exit_code == 0, result.output

    outbox = sorted(Path(app.config["OUTBOX_DIR"]).glob("*.eml"))
    assert len(outbox) == 1, [p.name for p in outbox]
    raw = outbox[0].read_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
    message = email.message_from_bytes(raw, policy=policy.default)
    names = {name.lower() for name in message}
    assert "bcc" not in names
    assert "x-injected" not in names
    assert len(message.get_all("Subject")) == 1
    assert "you won" not in str(message["Subject"]).lower()
    assert b"evil.example" not in head, "an injected address reached the header block"
    for name, value in message.items():
        assert "\r" not in str(value), f"{name} holds a CR"
        assert "\n" not in str(value), f"{name} holds a LF"
    assert [a.addr_spec for a in message["To"].addresses] == ["eve@example.com"]
