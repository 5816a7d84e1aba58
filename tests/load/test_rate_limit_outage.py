"""A rate-limit store that is down never loses a signup or a login; /healthz says the limits are degraded."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import func, select

from app import create_app
from core.db import db
from leads.models import Lead
from tests.support.factories import make_user
from tests.support.forms import VALID, Visitor
from tests.support.staff import login

REDIS_URL = "redis://127.0.0.1:6379"


@pytest.fixture
def dead_redis() -> Iterator[str]:
    """A Redis URL on a port bound but never listening: every connection is refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield f"redis://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def _storage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "storage" in r.getMessage()]


def test_signups_and_logins_work_while_redis_is_down(app, make_config, dead_redis, caplog):
    broken = create_app(make_config(RATELIMIT_STORAGE_URI=dead_redis, SIGNUP_RATE_LIMIT="3/minute"))
    make_user(broken)
    client = broken.test_client()
    with caplog.at_level(logging.INFO):
        visitor = Visitor(client)
        answers = [visitor.submit(email=f"outage{n}@example.com").status_code for n in range(4)]
        signed_in = login(broken.test_client()).status_code
        health = client.get("/healthz")
    # Three stored, the fourth refused: the limit still holds, counted in this process's memory.
    assert answers == [303, 303, 303, 429], answers
    assert signed_in == 302
    with broken.app_context():
        assert db.session.scalar(select(func.count()).select_from(Lead)) == 3
    assert len(_storage_warnings(caplog)) == 1, _storage_warnings(caplog)
    assert health.status_code == 503
    body = health.get_json()
    assert body["status"] == "degraded"
    assert body["rate_limits"]["ok"] is False
    assert body["rate_limits"]["storage"] == "redis"
    assert "memory" in body["rate_limits"]["note"]
    assert VALID["email"] not in health.get_data(as_text=True)


def test_healthz_reports_a_reachable_redis_as_ok(app, make_config):
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    healthy = create_app(make_config(RATELIMIT_STORAGE_URI=REDIS_URL))
    health = healthy.test_client().get("/healthz")
    assert health.status_code == 200
    assert health.get_json()["rate_limits"] == {"ok": True, "storage": "redis"}
