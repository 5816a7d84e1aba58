"""Database helpers shared by the fixtures: empty every table between tests, build an app on a clean database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import Engine

from admin.search import FTS_MARK
from app import create_app
from core.db import Base, db
from core.extensions import limiter
from studio.post_services import import_post_files
from studio.services import import_folders


def empty_tables(engine: Engine) -> None:
    """Delete every row of every table (PostgreSQL: one TRUNCATE, ids restarted; SQLite: search mark at 0)."""
    with engine.begin() as conn:
        tables = list(reversed(Base.metadata.sorted_tables))
        if conn.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())
            # The search index forgot the deleted leads (its triggers); ids start again at 1, so the mark must too,
            # or a test's new leads would land below it and be indexed by their insert.
            if conn.exec_driver_sql(f"SELECT 1 FROM sqlite_master WHERE name = '{FTS_MARK}'").first():
                conn.exec_driver_sql(f"UPDATE {FTS_MARK} SET upto = 0")


def unindexed_leads(application: Flask) -> int:
    """How many leads a search reads by LIKE until the worker indexes them (SQLite; 0 on PostgreSQL)."""
    with application.app_context(), db.engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            return 0
        above = f"SELECT count(*) FROM leads WHERE id > (SELECT upto FROM {FTS_MARK})"
        return int(conn.exec_driver_sql(above).scalar())


def publish_posts(application: Flask, root: str | Path) -> None:
    """Import the post files under root and publish them, as `flask blog import --publish` does."""
    with application.app_context():
        with db.write_transaction() as session:
            result = import_post_files(session, Path(root), "tests", publish_them=True)
        if result.problems:
            raise AssertionError("fixture posts do not validate:\n" + "\n".join(result.problems))


def publish_folders(application: Flask, root: str | Path) -> None:
    """Publish the posts of BLOG_DIR, then import the campaign folders under root and publish them, as `make run`
    does (campaigns may only link to published posts)."""
    if Path(application.config["BLOG_DIR"]).is_dir():
        publish_posts(application, application.config["BLOG_DIR"])
    with application.app_context():
        with db.write_transaction() as session:
            result = import_folders(session, Path(root), "tests", publish_them=True)
        if result.problems:
            raise AssertionError("fixture campaigns do not validate:\n" + "\n".join(result.problems))


def fresh_app(config: object, publish: bool = True) -> Iterator[Flask]:
    """Yield the app built from `config` on emptied tables with fresh rate limits, its BLOG_DIR and CAMPAIGNS_DIR
    published; close its database after."""
    application = create_app(config)
    with application.app_context():
        empty_tables(db.engine)
        limiter.reset()
    if publish and Path(application.config["CAMPAIGNS_DIR"]).is_dir():
        publish_folders(application, application.config["CAMPAIGNS_DIR"])
    elif publish and Path(application.config["BLOG_DIR"]).is_dir():
        publish_posts(application, application.config["BLOG_DIR"])
    yield application
    db.session.remove()
    db.engine.dispose()


def publish_into(database_url: str, root: str | Path, instance: Path) -> None:
    """Publish the campaign folders under root into the database at database_url (for tests that start the app
    in other processes, which read campaigns from the database)."""
    from config import TestConfig

    config = TestConfig(str(instance), database_url)
    config.CAMPAIGNS_DIR = str(root)
    application = create_app(config)
    publish_folders(application, root)
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
