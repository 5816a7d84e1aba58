"""core.db.Prepared stores rows exactly as conn.execute() does and fails as it fails, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from core.db import Prepared, db
from leads.models import Lead

COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "status",
    "source",
    "preferred_contact",
    "email_opt_in",
    "created_at",
    "updated_at",
)
INSERT = Prepared(lambda _: insert(Lead.__table__).returning(Lead.__table__.c.id), COLUMNS)


def _values(email: str) -> dict:
    return {
        "email": email,
        "first_name": "Zoë",
        "last_name": None,
        "status": "new",
        "source": "direct",
        "preferred_contact": "email",
        "email_opt_in": True,
        "created_at": datetime(2026, 11, 29, 15, 30, 12, 345678, tzinfo=UTC),
        "updated_at": datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
    }


def _row(lead_id: int) -> dict:
    lead = db.session.get(Lead, lead_id, populate_existing=True)
    return {name: getattr(lead, name) for name in COLUMNS if name != "email"}


def test_a_prepared_insert_stores_the_row_execute_stores(app) -> None:
    with app.app_context():
        with db.write_transaction() as session:
            ours = INSERT.execute(session.connection(), _values("prepared@example.com"))[0]
            theirs = session.execute(insert(Lead).returning(Lead.id), _values("executed@example.com")).scalar_one()
        assert _row(ours) == _row(theirs)
        assert _row(ours)["created_at"] == datetime(2026, 11, 29, 15, 30, 12, 345678, tzinfo=UTC)


def test_a_refused_row_raises_integrity_error_and_the_transaction_keeps_nothing(app) -> None:
    def insert_twice() -> None:
        with db.write_transaction() as session:
            INSERT.execute(session.connection(), _values("twice@example.com"))
            INSERT.execute(session.connection(), _values("twice@example.com"))

    with app.app_context():
        with pytest.raises(IntegrityError):
            insert_twice()
        assert db.session.scalars(select(Lead).where(Lead.email == "twice@example.com")).all() == []


def test_a_statement_without_returning_gives_none(app) -> None:
    plain = Prepared(lambda _: insert(Lead.__table__).inline(), COLUMNS)
    with app.app_context():
        with db.write_transaction() as session:
            assert plain.execute(session.connection(), _values("plain@example.com")) is None
        assert db.session.scalars(select(Lead.first_name).where(Lead.email == "plain@example.com")).one() == "Zoë"


def test_parameters_that_do_not_match_the_statement_are_refused(app) -> None:
    # Without created_at and updated_at, execute() would have filled their Python-side defaults: never skipped here.
    no_defaults = Prepared(lambda _: insert(Lead.__table__).inline(), ("email", "first_name", "status", "source"))
    unknown = Prepared(lambda _: insert(Lead.__table__).inline(), (*COLUMNS, "colour"))
    unsaid = Prepared(lambda _: insert(Lead.__table__), COLUMNS)
    with app.app_context():
        with db.write_transaction() as session:
            connection = session.connection()
            with pytest.raises(ValueError, match=r"not given: \['created_at', 'email_opt_in'.*'updated_at'\]"):
                no_defaults.execute(connection, {"email": "x@example.com", "first_name": "X"})
            with pytest.raises(ValueError, match=r"not in the statement: \['colour'\]"):
                unknown.execute(connection, {**_values("y@example.com"), "colour": "red"})
            if connection.dialect.name == "postgresql":
                with pytest.raises(ValueError, match="returning"):
                    unsaid.execute(connection, _values("z@example.com"))
        assert db.session.scalars(select(Lead)).all() == []
