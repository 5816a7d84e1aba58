"""Leads indexes the models cannot declare: the search index (trigrams on PostgreSQL with pg_trgm, an FTS5
trigram table on SQLite) and the expression indexes of the list's name and status orders.

Both answer "this text appears somewhere in the email, first name or last name" and "these digits appear in the
phone" from an index, so a search does not read every lead. Words shorter than three characters have no trigram:
they are matched by LIKE over the rows the other words (or filters) leave.
The structures live outside the models' metadata (a virtual table and expression indexes SQLAlchemy cannot
declare); `create_all` builds them through the table's after_create event, migrations 0009 and 0012 on existing
databases. On SQLite a new lead is indexed by the worker, not by its signup (see FTS_MARK).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from sqlalchemy import Connection, and_, event, literal_column, or_, select, text
from sqlalchemy.sql.elements import ColumnElement

from core.db import db
from core.vocabulary import STATUSES
from leads.models import Lead

log = logging.getLogger(__name__)

FTS_TABLE = "leads_search"
TRGM_INDEXES = ("ix_leads_search_trgm", "ix_leads_phone_trgm")
ORDER_INDEXES = ("ix_leads_name_order", "ix_leads_status_order")
MIN_INDEXED = 3  # a trigram index cannot narrow a shorter word
MAX_WORDS = 5
# The same expression in the index and in the query, so PostgreSQL matches them. A search word never contains a
# space (words are split on whitespace), so a match cannot straddle two fields: it is a match in one of them.
_DOC_SQL = "coalesce({p}email, '') || ' ' || coalesce({p}first_name, '') || ' ' || coalesce({p}last_name, '')"

# The leads list sorted by status: literal SQL (no bound parameters), so both databases match the index to it.
STATUS_RANK_SQL = "CASE {p}status " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STATUSES)) + " END"
_ORDER_DDL = (
    f"CREATE INDEX IF NOT EXISTS {ORDER_INDEXES[0]} ON leads (lower(last_name), lower(first_name), id)",
    f"CREATE INDEX IF NOT EXISTS {ORDER_INDEXES[1]} ON leads (({STATUS_RANK_SQL.format(p='')}), "
    "created_at DESC, id DESC)",
)

# On SQLite a signup does not index its lead: FTS5 writes a segment per transaction (about a tenth of a signup's
# cost). The worker indexes new leads in batches (`index_new_leads`), and a search reads the few leads above the
# mark by LIKE, so it finds every lead whatever the worker is doing. Rows at or below the mark follow every
# change at once: the triggers fire for them only (an id can come back below it when the newest lead is deleted).
FTS_MARK = f"{FTS_TABLE}_upto"
_INDEXED = f"(SELECT upto FROM {FTS_MARK})"
_FTS_COLUMNS = "rowid, email, first_name, last_name, phone"
_SQLITE_TRIGGERS = (
    f"CREATE TRIGGER {FTS_TABLE}_ai AFTER INSERT ON leads WHEN new.id <= {_INDEXED} BEGIN "
    f"INSERT INTO {FTS_TABLE}({_FTS_COLUMNS}) "
    "VALUES (new.id, new.email, new.first_name, new.last_name, new.phone); END",
    # A contentless table forgets a row only when told its exact old values.
    f"CREATE TRIGGER {FTS_TABLE}_ad AFTER DELETE ON leads WHEN old.id <= {_INDEXED} BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, {_FTS_COLUMNS}) "
    "VALUES ('delete', old.id, old.email, old.first_name, old.last_name, old.phone); END",
    f"CREATE TRIGGER {FTS_TABLE}_au AFTER UPDATE OF email, first_name, last_name, phone ON leads "
    f"WHEN old.id <= {_INDEXED} BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, {_FTS_COLUMNS}) "
    "VALUES ('delete', old.id, old.email, old.first_name, old.last_name, old.phone); "
    f"INSERT INTO {FTS_TABLE}({_FTS_COLUMNS}) "
    "VALUES (new.id, new.email, new.first_name, new.last_name, new.phone); END",
)
_SQLITE_DDL = (
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(email, first_name, last_name, phone, content='', tokenize='trigram')",
    f"CREATE TABLE {FTS_MARK} (id INTEGER PRIMARY KEY CHECK (id = 1), upto INTEGER NOT NULL)",
    f"INSERT INTO {FTS_TABLE}({_FTS_COLUMNS}) SELECT id, email, first_name, last_name, phone FROM leads",
    f"INSERT INTO {FTS_MARK} (id, upto) SELECT 1, coalesce(max(id), 0) FROM leads",
    *_SQLITE_TRIGGERS,
)
INDEX_SECONDS = 10.0  # how often the worker indexes new leads (one read when there are none)
INDEX_BATCH = 5000  # leads indexed per transaction: signups wait for SQLite's write lock meanwhile
_POSTGRESQL_DDL = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    f"CREATE INDEX IF NOT EXISTS {TRGM_INDEXES[0]} ON leads USING gin (({_DOC_SQL.format(p='')}) gin_trgm_ops)",
    f"CREATE INDEX IF NOT EXISTS {TRGM_INDEXES[1]} ON leads USING gin (phone gin_trgm_ops)",
)


def create_search_index(conn: Connection) -> bool:
    """Build the search index for this database (filled from the leads already there); False if it cannot."""
    for sql in _ORDER_DDL:
        conn.exec_driver_sql(sql)
    statements = _SQLITE_DDL if conn.dialect.name == "sqlite" else _POSTGRESQL_DDL
    try:
        # A savepoint: without FTS5 or pg_trgm the rest of the schema still goes in, and search falls back to LIKE.
        with conn.begin_nested():
            for sql in statements:
                conn.exec_driver_sql(sql)
    except Exception as exc:  # noqa: BLE001 - any refusal (no module, no privilege) means "search by scanning"
        log.warning("leads search index not built, searches will read every lead: %s", exc)
        return False
    return True


def drop_search_index(conn: Connection) -> None:
    """Remove the search index and the order indexes (the migration's downgrade)."""
    for name in ORDER_INDEXES:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
    if conn.dialect.name == "sqlite":
        for suffix in ("_ai", "_ad", "_au"):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {FTS_TABLE}{suffix}")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {FTS_TABLE}")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {FTS_MARK}")
    else:
        for name in TRGM_INDEXES:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")


def is_search_object(name: str | None) -> bool:
    """Whether a table or index name is one of these (Alembic's comparison leaves them alone)."""
    return bool(name) and (
        name == FTS_TABLE or name.startswith(f"{FTS_TABLE}_") or name in TRGM_INDEXES or name in ORDER_INDEXES
    )


def include_name(name: str | None, type_: str, _parent: object) -> bool:
    """Alembic's filter: these structures (a virtual table, expression indexes) are outside the models."""
    return not (type_ in ("table", "index") and is_search_object(name))


def _has_fts(conn: Connection) -> bool:
    info = conn.info
    if "leads_fts" not in info:
        found = conn.exec_driver_sql(f"SELECT 1 FROM sqlite_master WHERE name = '{FTS_TABLE}'").first()
        info["leads_fts"] = found is not None
    return bool(info["leads_fts"])


def _indexed_by_worker(conn: Connection) -> bool:
    """SQLite with its FTS5 table: new leads wait above the mark for the worker (PostgreSQL indexes at insert)."""
    return conn.dialect.name == "sqlite" and _has_fts(conn)


def index_new_leads(conn: Connection, limit: int | None = INDEX_BATCH) -> int:
    """SQLite: index up to `limit` leads above the mark, in the caller's write transaction; how many."""
    if not _indexed_by_worker(conn):
        return 0
    upto = conn.exec_driver_sql(f"SELECT upto FROM {FTS_MARK}").scalar_one()
    newer = "SELECT id FROM leads WHERE id > ? ORDER BY id" + (f" LIMIT {int(limit)}" if limit is not None else "")
    last, count = conn.exec_driver_sql(f"SELECT max(id), count(*) FROM ({newer})", (upto,)).one()
    if not count:
        return 0
    conn.exec_driver_sql(
        f"INSERT INTO {FTS_TABLE}({_FTS_COLUMNS}) "
        "SELECT id, email, first_name, last_name, phone FROM leads WHERE id > ? AND id <= ?",
        (upto, last),
    )
    conn.exec_driver_sql(f"UPDATE {FTS_MARK} SET upto = ?", (last,))
    return int(count)


def index_due() -> int:
    """The worker's job: index the leads signed up since its last run, a batch per transaction; how many."""
    total = 0
    try:
        conn = db.session.connection()
        if not _indexed_by_worker(conn):
            return 0
        # A read first: the write lock is taken only when there is work.
        while conn.exec_driver_sql(f"SELECT 1 FROM leads WHERE id > {_INDEXED} LIMIT 1").first() is not None:
            with db.write_transaction() as session:
                done = index_new_leads(session.connection())
            total += done
            if not done:
                break
            conn = db.session.connection()
    finally:
        db.session.rollback()
    return total


def _like_escape(text_: str) -> str:
    return text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_words(q: str) -> list[str]:
    """The words of a search, lower case (at most five)."""
    return [word.lower() for word in q.split()[:MAX_WORDS]]


def _digits(word: str) -> str:
    digits = re.sub(r"\D", "", word)
    return digits if len(digits) >= MIN_INDEXED else ""


def _like_word(word: str, sqlite: bool) -> ColumnElement[bool]:
    """One word by LIKE (no index): in the name or email, or its digits in the phone."""
    pattern = f"%{_like_escape(word)}%"

    def match(column: Any) -> Any:
        # SQLite's LIKE already ignores ASCII case; PostgreSQL needs ILIKE.
        return column.like(pattern, escape="\\") if sqlite else column.ilike(pattern, escape="\\")

    options = [match(Lead.email), match(Lead.first_name), match(Lead.last_name)]
    if digits := _digits(word):
        options.append(Lead.phone.like(f"%{digits}%"))
    return or_(*options)


def _fts_phrase(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def search_clause(q: str, conn: Connection) -> ColumnElement[bool]:
    """Every word must appear in the name, email or phone (case-insensitive), found through the index."""
    words = search_words(q)
    sqlite = conn.dialect.name == "sqlite"
    short = [w for w in words if len(w) < MIN_INDEXED]
    long = [w for w in words if len(w) >= MIN_INDEXED]
    clauses = [_like_word(w, sqlite) for w in short]
    if sqlite and long and _has_fts(conn):
        # One MATCH for all the long words: a trigram phrase is an exact substring of one column.
        terms = []
        for word in long:
            term = "{email first_name last_name} : " + _fts_phrase(word)
            if digits := _digits(word):
                term = f"({term} OR phone : {_fts_phrase(digits)})"
            terms.append(term)
        matched = select(literal_column("rowid")).select_from(text(FTS_TABLE))
        matched = matched.where(text(f"{FTS_TABLE} MATCH :search_terms").bindparams(search_terms=" AND ".join(terms)))
        # The leads the worker has not indexed yet, read by LIKE (their ids are above the mark: a rowid range).
        # LIKE folds ASCII letters only, where FTS5 folds every alphabet: until indexed, "émile" misses "Émile".
        newest = select(Lead.id).where(Lead.id > literal_column(_INDEXED), *[_like_word(w, sqlite) for w in long])
        clauses.append(Lead.id.in_(matched.union_all(newest)))
    elif not sqlite:
        doc = literal_column(f"({_DOC_SQL.format(p='leads.')})")
        for word in long:
            options = [doc.ilike(f"%{_like_escape(word)}%", escape="\\")]
            if digits := _digits(word):
                options.append(Lead.phone.like(f"%{digits}%"))
            clauses.append(or_(*options))
    else:
        clauses += [_like_word(w, sqlite) for w in long]
    return and_(*clauses)


@event.listens_for(Lead.__table__, "after_create")
def _after_create(_table: Any, conn: Connection, **_kw: Any) -> None:
    create_search_index(conn)
