"""The PostgreSQL pass of `make test`: this machine's server (README), used when it answers.

`python -m tests.support.postgres` prints the URL for TEST_DATABASE_URL when the server answers, else nothing.
"""

from __future__ import annotations

import os
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core.db import normalize_url

# The server the README names; each test run makes throwaway databases next to `test`.
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def why_not(url: str = DEFAULT_URL) -> str | None:
    """None when the server behind `url` accepts a connection, else why not (a short, password-free reason)."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(plain, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"no PostgreSQL answers at {url.rsplit('@', 1)[-1]} ({first[:120]})"


def create_database(base_url: str) -> tuple[str, str]:
    """Make a throwaway database so parallel runs on one server never see each other's rows."""
    url = make_url(normalize_url(base_url))
    name = f"{url.database or 'test'}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False), name


def drop_database(base_url: str, name: str) -> None:
    """Drop a database create_database made, even with connections still open."""
    url = make_url(normalize_url(base_url))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def pass_note() -> str:
    """How the PostgreSQL pass of this run went, for the suite's last line."""
    if os.environ.get("TEST_DATABASE_URL"):
        return "PostgreSQL pass: ran"
    reason = why_not()
    if reason is None:
        return "PostgreSQL pass: not run (TEST_DATABASE_URL is not set; `make test` sets it when the server answers)"
    return f"PostgreSQL pass: not run (TEST_DATABASE_URL is not set and {reason})"


if __name__ == "__main__":
    if why_not() is None:
        print(DEFAULT_URL)
