"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from admin.search import include_name
from app import load_models
from core.db import Base, make_engine, upgrade


# The leads list's expression indexes (admin/search.py) are outside the models; SQLite cannot reflect them.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_upgrade_head_matches_models(tmp_path):
    load_models()
    engine = make_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        # The leads search index (FTS5 table, trigram indexes) lives outside the models: admin/search.py.
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ; run `make migrations-reset` or add a migration: {diff}"


def _row(table, **given):
    """A row for `table` with `given` values and a plain value in every other required column."""
    from datetime import UTC, datetime

    from sqlalchemy import Boolean, DateTime, Integer, String, Text

    values = dict(given)
    for column in table.columns:
        if column.name in values or column.nullable or column.primary_key or column.server_default is not None:
            continue
        kind = column.type
        if isinstance(kind, Boolean):
            values[column.name] = False
        elif isinstance(kind, Integer):
            values[column.name] = 0
        elif isinstance(kind, DateTime):
            values[column.name] = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
        elif isinstance(kind, String | Text):
            values[column.name] = f"{column.name}-x"[: getattr(kind, "length", None) or 50]
        else:
            values[column.name] = "x"
    return values


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_upgrading_an_early_sqlite_database_keeps_every_reference(tmp_path):
    """A migration that copies a table (SQLite's batch mode) must not fire the foreign keys' ON DELETE actions."""
    from sqlalchemy import MetaData, select

    load_models()
    engine = make_engine(f"sqlite:///{tmp_path / 'early.db'}")
    upgrade(engine, "0002_first_hour")  # before 0003 copies the users table
    meta = MetaData()
    meta.reflect(engine)
    users, leads, notes = meta.tables["users"], meta.tables["leads"], meta.tables["notes"]
    with engine.begin() as conn:
        user_id = conn.execute(users.insert().values(_row(users, email="staff@example.org", role="admin"))).lastrowid
        lead_id = conn.execute(
            leads.insert().values(_row(leads, email="lead@example.org", status="contacted", contacted_by_id=user_id))
        ).lastrowid
        conn.execute(notes.insert().values(_row(notes, lead_id=lead_id, user_id=user_id, body="called back")))
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.scalar(select(leads.c.contacted_by_id).where(leads.c.id == lead_id)) == user_id
        assert conn.scalar(select(notes.c.user_id).where(notes.c.lead_id == lead_id)) == user_id
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # switched back on for the app
    engine.dispose()


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_the_search_mark_migration_keeps_every_lead_searchable_both_ways(tmp_path):
    """0012 hands new leads' indexing to the worker (every lead indexed so far stays so); its downgrade indexes
    the leads the worker had not reached, since the older triggers index each insert themselves."""
    from alembic import command
    from sqlalchemy import MetaData

    from core.db import alembic_config, migrating

    load_models()
    engine = make_engine(f"sqlite:///{tmp_path / 'search.db'}")
    upgrade(engine, "0011_dash_snapshot")
    meta = MetaData()
    meta.reflect(engine, only=["leads"])
    leads = meta.tables["leads"]

    def add(name: str) -> int:
        with engine.begin() as conn:
            return conn.execute(leads.insert().values(_row(leads, email=f"{name}@example.org"))).lastrowid

    def indexed(name: str) -> list[int]:
        with engine.connect() as conn:
            return [
                r[0] for r in conn.exec_driver_sql(f"SELECT rowid FROM leads_search WHERE leads_search MATCH '{name}'")
            ]

    before = [add("alpha"), add("bravo")]
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT upto FROM leads_search_upto").scalar() == max(before)
    assert indexed("alpha") == [before[0]]
    assert indexed("bravo") == [before[1]]
    charlie = add("charlie")
    assert indexed("charlie") == []  # the worker's job now
    cfg = alembic_config()
    with migrating(engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0011_dash_snapshot")
    assert indexed("charlie") == [charlie]
    delta = add("delta")
    assert indexed("delta") == [delta]  # the older trigger again
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'leads_search_upto'").first() is None
    engine.dispose()
