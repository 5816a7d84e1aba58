"""The database: engine, a session per request or job, migrations through `flask db`."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import ColumnElement, MetaData, Table, any_, bindparam, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker
from werkzeug.routing import IntegerConverter, Map

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The largest id a BigId column holds on PostgreSQL (BIGINT); SQLite's INTEGER has the same bound.
MAX_ID = 2**63 - 1
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 15000
# Rows per IN (...) list and per multi-row INSERT: well under SQLite's limit on bound parameters.
CHUNK = 500
# Rows per JSON document inserted on PostgreSQL (one parameter, so only the document's size bounds it).
PG_CHUNK = 2000


def chunked(values: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    """`values` in consecutive slices of at most `size`, for set-based statements over many rows."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _on_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def among(session: Session, column: Any, values: list[Any]) -> ColumnElement[bool]:
    """`column IN (values)`; on PostgreSQL `column = ANY(array)`.

    One array parameter instead of one per value: psycopg rewrites every placeholder of a statement in Python,
    which for 10,000-row batches cost more than the database's own work.
    """
    if _on_postgresql(session):
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


def insert_rows(
    session: Session, table: Table, rows: list[dict[str, Any]], *, unique: str | None = None, returning: Any = None
) -> list[Any]:
    """Insert `rows` (all with the same keys) per chunk, skipping those whose `unique` column exists already;
    returns the `returning` column of the rows inserted (nothing without it).

    On PostgreSQL a chunk travels as one JSON parameter read by json_to_recordset, for the reason among() gives
    (psycopg's text arrays escape JSON payloads character by character, slower still).
    """
    if not rows:
        return []
    inserted: list[Any] = []
    for chunk in chunked(rows, PG_CHUNK if _on_postgresql(session) else CHUNK):
        if _on_postgresql(session):
            statement, parameters = (
                _recordset_insert(session, table, list(chunk[0]), unique, returning),
                {"rows": json.dumps([{k: _json_value(v) for k, v in row.items()} for row in chunk])},
            )
        else:
            statement = sqlite.insert(table)
            if unique is not None:
                statement = statement.on_conflict_do_nothing(index_elements=[unique])
            if returning is not None:
                statement = statement.returning(returning)
            parameters = chunk
        if returning is None:
            session.execute(statement, parameters)
        else:
            inserted.extend(session.scalars(statement, parameters))
    return inserted


def update_rows(session: Session, table: Table, rows: list[dict[str, Any]], *, key: str = "id") -> None:
    """Set each row's values on the row whose `key` column matches (all rows with the same keys), per chunk.

    On PostgreSQL a chunk is one statement reading a JSON document (see insert_rows); on SQLite, in process, an
    executemany of one prepared statement.
    """
    if not rows:
        return
    names = [name for name in rows[0] if name != key]
    if _on_postgresql(session):
        statement = _recordset_update(session, table, key, names)
        for chunk in chunked(rows, PG_CHUNK):
            session.execute(statement, {"rows": json.dumps([{k: _json_value(v) for k, v in r.items()} for r in chunk])})
        return
    statement = (
        table.update().where(table.c[key] == bindparam("_key")).values({name: bindparam(name) for name in names})
    )
    for chunk in chunked(rows):
        session.execute(statement, [{**{name: row[name] for name in names}, "_key": row[key]} for row in chunk])


def _recordset_update(session: Session, table: Table, key: str, names: list[str]) -> Any:
    dialect = session.get_bind().dialect
    quote = dialect.identifier_preparer.quote
    types = ", ".join(f"{quote(name)} {table.c[name].type.compile(dialect)}" for name in [key, *names])
    assignments = ", ".join(f"{quote(name)} = x.{quote(name)}" for name in names)
    return text(
        f"UPDATE {quote(table.name)} SET {assignments} FROM json_to_recordset(CAST(:rows AS json)) AS x({types}) "
        f"WHERE {quote(table.name)}.{quote(key)} = x.{quote(key)}"
    )


def _json_value(value: Any) -> Any:
    # Columns hold naive UTC (core.columns.UTCDateTime): convert as its bind step would.
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None).isoformat()
    return value


def _recordset_insert(session: Session, table: Table, names: list[str], unique: str | None, returning: Any) -> Any:
    dialect = session.get_bind().dialect
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name in names)
    types = ", ".join(f"{quote(name)} {table.c[name].type.compile(dialect)}" for name in names)
    sql = (
        f"INSERT INTO {quote(table.name)} ({columns}) SELECT {columns} "
        f"FROM json_to_recordset(CAST(:rows AS json)) AS x({types})"
    )
    if unique is not None:
        sql += f" ON CONFLICT ({quote(unique)}) DO NOTHING"
    if returning is not None:
        sql += f" RETURNING {quote(returning.name)}"
    return text(sql)


class Prepared:
    """A DML statement compiled once per dialect and run on the connection's DBAPI cursor, for the hottest writes.

    conn.execute() spends 30-60 µs a statement on an execution context, a result object and events before the
    driver's own work; a signup's four INSERTs, run while SQLite's single write lock is held, spent more there than
    in SQLite. Values pass through the columns' own bind processors, so a row is stored exactly as conn.execute()
    stores it, and driver errors are raised as SQLAlchemy's (IntegrityError...), as conn.execute() raises them.
    No connection events fire for these statements. `build` makes the statement for a dialect name (an upsert is
    written differently on each); `names` are the parameters each execute() gives, no more, no fewer.
    """

    def __init__(self, build: Callable[[str], Any], names: Iterable[str]) -> None:
        self.build = build
        self.names = tuple(names)
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict[str, Callable[[Any], Any]]]] = {}

    def _for(self, dialect: Any) -> tuple[str, tuple[str, ...] | None, dict[str, Callable[[Any], Any]]]:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self.build(dialect.name).compile(dialect=dialect, column_keys=list(self.names))
            missing, unknown = set(compiled.binds) - set(self.names), set(self.names) - set(compiled.binds)
            if missing or unknown:
                # execute() would fill a column's Python-side default (created_at=now...); here it must be given.
                raise ValueError(f"parameters not given: {sorted(missing)}; not in the statement: {sorted(unknown)}")
            if getattr(compiled, "implicit_returning", None):
                # On PostgreSQL a single-row insert() fetches its new key unasked: here each statement says so.
                raise ValueError("say what the INSERT returns: .returning(...), or .inline() for nothing")
            processors = {}
            for name, bind in compiled.binds.items():
                processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if processor is not None:
                    processors[name] = processor
            order = tuple(compiled.positiontup) if compiled.positional else None
            found = self._compiled[dialect.name] = (compiled.string, order, processors)
        return found

    def execute(self, conn: Connection, values: dict[str, Any]) -> Any:
        """Run the statement with `values` in `conn`'s transaction; the first row it returns, if it returns any."""
        sql, order, processors = self._for(conn.dialect)
        params: Any = {name: processors[name](value) if name in processors else value for name, value in values.items()}
        if order is not None:
            params = [params[name] for name in order]
        dbapi = conn.dialect.loaded_dbapi
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchone() if cursor.description else None
        except dbapi.Error as exc:
            raise DBAPIError.instance(sql, params, exc, dbapi.Error, dialect=conn.dialect) from exc
        finally:
            cursor.close()


class IdConverter(IntegerConverter):
    """`<int:...>` in routes, bounded by the database: a number past any row's id is no route (404), not a crash."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


class Base(DeclarativeBase):
    """Declarative base for every model."""

    metadata = MetaData(naming_convention=NAMING)


def normalize_url(url: str) -> str:
    """Accept the postgres:// and postgresql:// forms hosts hand out and use psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, **kwargs: object) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout, foreign keys and explicit BEGINs."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
            # Let SQLAlchemy, not pysqlite, decide when transactions begin (see "begin" below).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:  # noqa: ANN001
            # A writer that starts DEFERRED and later upgrades fails with SQLITE_BUSY instead of
            # waiting, so write transactions ask for the lock up front (see `write_transaction`).
            immediate = conn.get_execution_options().get("sqlite_immediate", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


class WriterQueue:
    """Lets SQLite writers of every process and thread take turns through a lock file beside the database.

    SQLite's busy handler makes a writer that finds the lock taken sleep 1, 2, 5, 10... ms before trying again,
    so two web workers storing signups spent much of their time asleep; a waiter on flock() is woken the moment
    the holder lets go. Writers that do not queue (the nurture worker's own connection) still get the busy
    timeout, so this orders writers and never replaces SQLite's own lock.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int:
        # A descriptor inherited across fork() is one open file shared with the parent: flock() would then let
        # both hold it at once, so each process opens its own.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
            # Apps come and go in tests and CLI runs: the descriptor goes with its queue.
            weakref.finalize(self, os.close, self._fd)
        return self._fd

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the queue while the block runs; re-entrant within a thread."""
        with self._threads:
            if self._depth == 0:
                fcntl.flock(self._file(), fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.flock(self._file(), fcntl.LOCK_UN)


class Database:
    """Holds the engine and a thread-scoped session for one app."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.factory = sessionmaker(expire_on_commit=False)
        self.session = scoped_session(self.factory)
        self.writers: WriterQueue | None = None

    @property
    def is_sqlite(self) -> bool:
        """True when the app runs on SQLite."""
        return self.engine is not None and self.engine.dialect.name == "sqlite"

    def init_app(self, app: Flask) -> None:
        """Create the engine from DATABASE_URL, close sessions after each request, add `flask db`."""
        url = app.config["DATABASE_URL"]
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(url)
        self.factory.configure(bind=self.engine)
        database = self.engine.url.database if self.is_sqlite else None
        self.writers = WriterQueue(f"{database}-writers.lock") if database and database != ":memory:" else None
        app.extensions["db"] = self
        # Before any blueprint adds its routes: ids in URLs are database ids.
        app.url_map.converters["int"] = IdConverter

        @app.teardown_appcontext
        def _remove_session(_exc: BaseException | None) -> None:
            self.session.remove()

        app.cli.add_command(db_cli)

    @contextlib.contextmanager
    def write_transaction(self) -> Iterator[Session]:
        """A transaction that takes SQLite's write lock at BEGIN; commits on success, rolls back on error."""
        session = self.session()
        if session.in_transaction():
            session.commit()
        with self.writers.turn() if self.writers is not None else contextlib.nullcontext():
            session.connection(execution_options={"sqlite_immediate": True})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise


db = Database()


def alembic_config():  # noqa: ANN201
    """Alembic configuration pointing at migrations/, without an alembic.ini."""
    from alembic.config import Config as AlembicConfig  # only `flask db` loads alembic, never a web or worker process

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


@contextlib.contextmanager
def migrating(engine: Engine) -> Iterator[Connection]:
    """A connection for migrations, in one transaction; on SQLite with foreign keys off while it runs.

    SQLite's batch mode copies a table and drops the old one: with foreign keys on, that drop fires the ON DELETE
    actions of every table pointing at it (SET NULL, CASCADE) and silently loses references or rows. The pragma
    only changes outside a transaction, so it is set on the raw connection before BEGIN and restored after; the
    copy is checked with foreign_key_check before the commit.
    """
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        raw = conn.connection.dbapi_connection
        if sqlite:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                yield conn
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration left {len(broken)} broken reference(s); nothing was changed")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision` on `engine`."""
    from alembic import command  # only `flask db` loads alembic, never a web or worker process

    cfg = alembic_config()
    with migrating(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


db_cli = AppGroup("db", help="Database migrations (Alembic).")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade_command(revision: str) -> None:
    """Apply migrations up to REVISION (default: head), then refresh the planner's statistics."""
    upgrade(db.engine, revision)
    # Fresh statistics let the planner use the indexes the admin's list and dashboard queries rely on.
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    click.echo(f"database at {revision}: {db.engine.url.render_as_string(hide_password=True)}")


@db_cli.command("downgrade")
@click.argument("revision", default="-1")
def downgrade_command(revision: str) -> None:
    """Revert migrations down to REVISION (default: one step)."""
    from alembic import command  # only `flask db` loads alembic, never a web or worker process

    cfg = alembic_config()
    with migrating(db.engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


@db_cli.command("revision")
@click.option("-m", "--message", required=True, help="What the migration changes.")
def revision_command(message: str) -> None:
    """Write a new migration from the difference between the models and the database."""
    from alembic import command  # only `flask db` loads alembic, never a web or worker process

    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)


@db_cli.command("current")
def current_command() -> None:
    """Print the database's migration revision."""
    with db.engine.connect() as conn:
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    click.echo(row[0] if row else "(none)")


def check_connection() -> dict[str, object]:
    """Report whether the database answers, for /healthz."""
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"ok": True, "backend": db.engine.dialect.name}
    except Exception as exc:  # noqa: BLE001
        current_app.logger.warning("database check failed: %s", type(exc).__name__)
        return {"ok": False, "backend": db.engine.dialect.name, "error": type(exc).__name__}
