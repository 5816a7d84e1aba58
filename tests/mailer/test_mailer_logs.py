"""Honest logs: whatever the mail backend, sending leaves no address, name or unsubscribe token in the log."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from flask import Flask

from mailer.tokens import unsubscribe_url
from nurture.dispatch import tick
from tests.support.database import fresh_app
from tests.support.factories import make_lead

EMAIL = "zebulon.quixote@example.org"
FIRST, LAST = "Zebulon", "Quixote"


@pytest.fixture(params=["outbox", "console", "sendgrid"])
def mail_app(request: pytest.FixtureRequest, make_config) -> Iterator[Flask]:
    """The app on each backend; sendgrid talks to the fake SendGrid."""
    if request.param == "sendgrid":
        yield request.getfixturevalue("sendgrid_app")
    else:
        yield from fresh_app(make_config(MAIL_BACKEND=request.param))


def test_sending_logs_no_address_name_or_unsubscribe_token_on_any_backend(mail_app, caplog):
    with caplog.at_level(logging.DEBUG):
        lead_id = make_lead(mail_app, EMAIL, first_name=FIRST, last_name=LAST, message=None)
        with mail_app.app_context():
            counts = tick()
            token = unsubscribe_url(lead_id).rsplit("/", 1)[-1]
    assert counts.get("sent") == 1, counts
    if mail_app.config["MAIL_BACKEND"] == "console":
        assert "mail (console backend" in caplog.text  # the log was captured
    logged = caplog.text.lower()
    for secret in (EMAIL, EMAIL.split("@")[0], FIRST, LAST, token):
        assert secret.lower() not in logged, f"{secret!r} is in the log"
