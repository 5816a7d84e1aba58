"""Database helpers shared by the fixtures: empty every table between tests."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.db import Base


def empty_tables(engine: Engine) -> None:
    """Delete every row of every table (PostgreSQL: one TRUNCATE, identities restarted)."""
    with engine.begin() as conn:
        tables = list(reversed(Base.metadata.sorted_tables))
        if conn.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())
