"""Shared fixtures: an app on SQLite (and on PostgreSQL when TEST_DATABASE_URL is set), a client, a clock."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app import load_models
from config import TestConfig
from core.clock import FrozenClock
from core.db import Base, make_engine
from tests.support import factories
from tests.support.database import fresh_app
from tests.support.postgres import create_database, drop_database, pass_note
from tests.support.staff import Staff, login

pytest_plugins = ["tests.fakes.fixtures"]

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])
SKIP_REASONS: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count each skipped test under its reason, for the run's last line."""
    if report.skipped and not hasattr(report, "wasxfail"):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        SKIP_REASONS[reason.removeprefix("Skipped: ")] += 1


def pytest_unconfigure(config: pytest.Config) -> None:
    """End the run with one line: what was skipped and why, and whether the PostgreSQL pass ran."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or config.option.collectonly:
        return
    if SKIP_REASONS:
        total = sum(SKIP_REASONS.values())
        reasons = " | ".join(f"{n} x {reason}" for reason, n in SKIP_REASONS.most_common())
        skipped = f"skipped {total} test(s): {reasons}"
    else:
        skipped = "skipped: nothing"
    reporter.write_line(f"{skipped} | {pass_note()}")


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database with the schema, once per backend for the whole run."""
    load_models()
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        name = None
    else:
        url, name = create_database(os.environ["TEST_DATABASE_URL"])
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    yield url
    if name:
        drop_database(os.environ["TEST_DATABASE_URL"], name)


@pytest.fixture
def clock() -> FrozenClock:
    """A clock the test moves by hand; the app uses it for every timestamp."""
    return FrozenClock(datetime(2026, 11, 23, 16, 0, tzinfo=UTC))  # a Monday, 09:00 in Denver


@pytest.fixture
def make_config(database_url: str, tmp_path: Path, clock: FrozenClock):
    """Build a TestConfig; tests may change attributes before create_app."""

    def factory(**overrides: object) -> TestConfig:
        config = TestConfig(str(tmp_path / "instance"), database_url)
        config.CLOCK = clock
        for key, value in overrides.items():
            setattr(config, key, value)
        return config

    return factory


@pytest.fixture
def app(make_config) -> Iterator[Flask]:
    """The app on a clean database."""
    yield from fresh_app(make_config())


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A runner for the app's `flask` commands."""
    return app.test_cli_runner()


@pytest.fixture
def backend(database_url: str) -> str:
    """'sqlite' or 'postgresql'."""
    return "postgresql" if database_url.startswith("postgres") else "sqlite"


@pytest.fixture(autouse=True)
def _fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with small costs: production strength takes most of a second per hash on a busy CI machine."""
    import admin.users

    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(admin.users, "_hasher", fast)
    dummy = fast.hash("not-a-real-password-0000")
    monkeypatch.setattr(admin.users, "_dummy_hash", lambda: dummy)


@pytest.fixture
def make_lead(app: Flask) -> Callable[..., int]:
    """Store a complete signup (every answer given, see factories.FULL_SIGNUP) through the capture service."""

    def factory(email: str = "dana@example.com", consent: bool = True, **fields: object) -> int:
        return factories.make_lead(app, email, consent=consent, **(factories.FULL_SIGNUP | fields))

    return factory


@pytest.fixture
def make_delivery(app: Flask) -> Callable[..., int]:
    """Store a delivery (a stem-cell-therapy welcome email unless told otherwise); returns its id."""

    def factory(key: str, **fields: object) -> int:
        return factories.make_delivery(app, key, **fields)

    return factory


@pytest.fixture
def make_user(app: Flask) -> Callable[..., str]:
    """Create a staff user; returns its email."""

    def factory(email: str = factories.STAFF_EMAIL, role: str = "admin", password: str = factories.PASSWORD) -> str:
        return factories.make_user(app, email, password, role)

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
