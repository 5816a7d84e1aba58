"""Pytest fixtures for the fake SendGrid: `fake_sendgrid` (a running server) and `sendgrid_app`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from tests.fakes.sendgrid import FakeSendGrid
from tests.support.database import fresh_app


@pytest.fixture
def fake_sendgrid() -> Iterator[FakeSendGrid]:
    """A fake SendGrid v3 API on 127.0.0.1, started for one test."""
    fake = FakeSendGrid().start()
    yield fake
    fake.stop()


@pytest.fixture
def sendgrid_app(make_config, fake_sendgrid: FakeSendGrid) -> Iterator[Flask]:
    """The app on a clean database, sending through the real sendgrid client to the fake."""
    config = make_config(
        MAIL_BACKEND="sendgrid",
        SENDGRID_API_HOST=fake_sendgrid.url,
        SENDGRID_API_KEY=fake_sendgrid.api_key,
        SENDGRID_WEBHOOK_PUBLIC_KEY=fake_sendgrid.public_key,
        SENDGRID_TIMEOUT=2.0,
        # Real SendGrid sending needs https links (RFC 8058); the worker refuses http.
        SITE_URL="https://www.nexgenesis.example",
        SESSION_COOKIE_SECURE=False,
    )
    yield from fresh_app(config)
