"""SQLite: new leads are added to the search index by the worker in batches instead of by each signup

Revision ID: 0012_search_mark
Revises: 0011_dash_snapshot
Create Date: 2026-11-29 22:00:00

A one-row table holds the highest lead id the FTS5 table holds; the triggers now keep only the rows at or below
it, and searches read the newer ones by LIKE. Every lead is indexed already, so the mark starts at the highest id.
The statements are those of admin/search.py at the time of writing, frozen here. PostgreSQL is left as it is.
"""

from __future__ import annotations

from alembic import op

revision = "0012_search_mark"
down_revision = "0011_dash_snapshot"
branch_labels = None
depends_on = None

COLUMNS = "rowid, email, first_name, last_name, phone"
NEW = "VALUES (new.id, new.email, new.first_name, new.last_name, new.phone)"
OLD = "VALUES ('delete', old.id, old.email, old.first_name, old.last_name, old.phone)"
INTO = f"INTO leads_search({COLUMNS})"
DELETE_INTO = f"INTO leads_search(leads_search, {COLUMNS})"
MARK = "(SELECT upto FROM leads_search_upto)"
NAMES = ("leads_search_ai", "leads_search_ad", "leads_search_au")
UPDATE_OF = "AFTER UPDATE OF email, first_name, last_name, phone ON leads"


def _triggers(when_new: str, when_old: str) -> tuple[str, ...]:
    return (
        f"CREATE TRIGGER leads_search_ai AFTER INSERT ON leads {when_new} BEGIN INSERT {INTO} {NEW}; END",
        f"CREATE TRIGGER leads_search_ad AFTER DELETE ON leads {when_old} BEGIN INSERT {DELETE_INTO} {OLD}; END",
        f"CREATE TRIGGER leads_search_au {UPDATE_OF} {when_old} BEGIN "
        f"INSERT {DELETE_INTO} {OLD}; INSERT {INTO} {NEW}; END",
    )


def _has_index(conn) -> bool:  # noqa: ANN001
    found = conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'leads_search'").first()
    return found is not None


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite" or not _has_index(conn):
        return
    conn.exec_driver_sql(
        "CREATE TABLE leads_search_upto (id INTEGER PRIMARY KEY CHECK (id = 1), upto INTEGER NOT NULL)"
    )
    conn.exec_driver_sql("INSERT INTO leads_search_upto (id, upto) SELECT 1, coalesce(max(id), 0) FROM leads")
    for name in NAMES:
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    for sql in _triggers(f"WHEN new.id <= {MARK}", f"WHEN old.id <= {MARK}"):
        conn.exec_driver_sql(sql)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite" or not _has_index(conn):
        return
    # The older triggers index every insert: first index the leads above the mark.
    conn.exec_driver_sql(f"INSERT {INTO} SELECT id, email, first_name, last_name, phone FROM leads WHERE id > {MARK}")
    for name in NAMES:
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    for sql in _triggers("", ""):
        conn.exec_driver_sql(sql)
    conn.exec_driver_sql("DROP TABLE leads_search_upto")
