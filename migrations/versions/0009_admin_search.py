"""Leads search index (pg_trgm GIN indexes on PostgreSQL, an FTS5 trigram table kept by triggers on SQLite) and
the indexes of the leads list's orders (name, status, a status filter newest first)

Revision ID: 0009_admin_search
Revises: 0008_posts
Create Date: 2026-11-29 13:00:00

The statements are those of admin/search.py at the time of writing, frozen here. A later migration that
rebuilds the leads table in batch mode on SQLite drops the three triggers: it must create them again.
"""

from __future__ import annotations

import logging

from alembic import op

revision = "0009_admin_search"
down_revision = "0008_posts"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

DOC = "coalesce(email, '') || ' ' || coalesce(first_name, '') || ' ' || coalesce(last_name, '')"
NEW = "VALUES (new.id, new.email, new.first_name, new.last_name, new.phone)"
OLD = "VALUES ('delete', old.id, old.email, old.first_name, old.last_name, old.phone)"
INTO = "INTO leads_search(rowid, email, first_name, last_name, phone)"
DELETE_INTO = "INTO leads_search(leads_search, rowid, email, first_name, last_name, phone)"
STATUS_RANK = (
    "CASE status WHEN 'new' THEN 0 WHEN 'contacted' THEN 1 WHEN 'booked' THEN 2 WHEN 'patient' THEN 3 "
    "WHEN 'not_a_fit' THEN 4 END"
)
ORDER = (
    "CREATE INDEX IF NOT EXISTS ix_leads_name_order ON leads (lower(last_name), lower(first_name), id)",
    f"CREATE INDEX IF NOT EXISTS ix_leads_status_order ON leads (({STATUS_RANK}), created_at DESC, id DESC)",
)
SQLITE = (
    "CREATE VIRTUAL TABLE leads_search USING fts5("
    "email, first_name, last_name, phone, content='', tokenize='trigram')",
    f"CREATE TRIGGER leads_search_ai AFTER INSERT ON leads BEGIN INSERT {INTO} {NEW}; END",
    f"CREATE TRIGGER leads_search_ad AFTER DELETE ON leads BEGIN INSERT {DELETE_INTO} {OLD}; END",
    "CREATE TRIGGER leads_search_au AFTER UPDATE OF email, first_name, last_name, phone ON leads BEGIN "
    f"INSERT {DELETE_INTO} {OLD}; INSERT {INTO} {NEW}; END",
    f"INSERT {INTO} SELECT id, email, first_name, last_name, phone FROM leads",
)
POSTGRESQL = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    f"CREATE INDEX IF NOT EXISTS ix_leads_search_trgm ON leads USING gin (({DOC}) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS ix_leads_phone_trgm ON leads USING gin (phone gin_trgm_ops)",
)


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.create_index("ix_leads_status_created", ["status", "created_at", "id"], unique=False)
    conn = op.get_bind()
    for sql in ORDER:
        conn.exec_driver_sql(sql)
    try:
        # Without FTS5 (SQLite before 3.34) or pg_trgm the schema is still whole: searches then read every lead.
        with conn.begin_nested():
            for sql in SQLITE if conn.dialect.name == "sqlite" else POSTGRESQL:
                conn.exec_driver_sql(sql)
    except Exception as exc:  # noqa: BLE001
        log.warning("leads search index not built, searches will read every lead: %s", exc)


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_index("ix_leads_status_created")
    conn = op.get_bind()
    for name in ("ix_leads_name_order", "ix_leads_status_order"):
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
    if conn.dialect.name == "sqlite":
        for name in ("leads_search_ai", "leads_search_ad", "leads_search_au"):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
        conn.exec_driver_sql("DROP TABLE IF EXISTS leads_search")
    else:
        for name in ("ix_leads_search_trgm", "ix_leads_phone_trgm"):
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
