"""Database helpers shared by the fixtures: empty every table between tests, build an app on a clean database."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import Engine

from app import create_app
from core.db import Base, db
from core.extensions import limiter


def empty_tables(engine: Engine) -> None:
    """Delete every row of every table (PostgreSQL: one TRUNCATE, identities restarted)."""
    with engine.begin() as conn:
        tables = list(reversed(Base.metadata.sorted_tables))
        if conn.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())


def fresh_app(config: object) -> Iterator[Flask]:
    """Yield the app built from `config` on emptied tables with fresh rate limits; close its database after."""
    application = create_app(config)
    with application.app_context():
        empty_tables(db.engine)
        limiter.reset()
    yield application
    db.session.remove()
    db.engine.dispose()
