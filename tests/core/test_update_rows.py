"""core.db.update_rows sets each row's values by key, in bulk, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from core.db import db, update_rows
from mailer.models import Delivery


def test_each_row_gets_its_own_values_and_others_are_left_alone(app, make_delivery) -> None:
    ids = [make_delivery(f"row-{n}", state="sent", error="old") for n in range(3)]
    moment = datetime(2026, 11, 29, 15, 30, 12, 345000, tzinfo=UTC)
    with app.app_context():
        with db.write_transaction() as session:
            update_rows(
                session,
                Delivery.__table__,
                [
                    {"id": ids[0], "state": "bounced", "bounced_at": moment, "error": None, "open_count": 2},
                    {
                        "id": ids[1],
                        "state": "delivered",
                        "bounced_at": None,
                        "error": 'it\'s "quoted"',
                        "open_count": 0,
                    },
                ],
            )
        rows = {d.id: d for d in db.session.scalars(select(Delivery).where(Delivery.id.in_(ids)))}
    assert (rows[ids[0]].state, rows[ids[0]].bounced_at, rows[ids[0]].error, rows[ids[0]].open_count) == (
        "bounced",
        moment,
        None,
        2,
    )
    assert (rows[ids[1]].state, rows[ids[1]].error) == ("delivered", 'it\'s "quoted"')
    assert (rows[ids[2]].state, rows[ids[2]].error) == ("sent", "old")
