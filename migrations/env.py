"""Alembic environment: the models' metadata, the connection from `flask db` or DATABASE_URL."""

from __future__ import annotations

from alembic import context

from admin.search import include_name
from app import load_models
from config import Config
from core.db import Base, make_engine

load_models()
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Run with the connection `flask db` passed in, or one made from the environment."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(Config().DATABASE_URL)
    with engine.begin() as conn:
        _run(conn)


def _run(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run `flask db upgrade` against a database")
run_migrations_online()
