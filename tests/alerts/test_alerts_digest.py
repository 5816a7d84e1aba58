"""The daily digest: the right local day, sent once after the configured local time."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from alerts_helpers import full_text, mails_to, tick

from alerts.digest import day_bounds, due_day, parse_time, reported_day
from core.db import db
from leads.services import change_status
from mailer.models import Delivery
from mailer.suppression import suppress
from tests.support.factories import make_lead, rows

DENVER = ZoneInfo("America/Denver")


@pytest.mark.parametrize(
    ("utc", "zone", "at", "expected"),
    [
        # 07:59 in Denver: not yet; 08:00: today's digest (which reports yesterday).
        (datetime(2026, 11, 23, 14, 59, tzinfo=UTC), "America/Denver", "08:00", None),
        (datetime(2026, 11, 23, 15, 0, tzinfo=UTC), "America/Denver", "08:00", date(2026, 11, 23)),
        # 02:00 UTC on the 24th is still the 23rd in Denver but already the 24th in Berlin and Auckland.
        (datetime(2026, 11, 24, 2, 0, tzinfo=UTC), "America/Denver", "08:00", date(2026, 11, 23)),
        (datetime(2026, 11, 24, 2, 0, tzinfo=UTC), "Europe/Berlin", "08:00", None),
        (datetime(2026, 11, 24, 2, 0, tzinfo=UTC), "Pacific/Auckland", "08:00", date(2026, 11, 24)),
        # Daylight saving: 08:00 Denver is 15:00 UTC in winter, 14:00 UTC in summer.
        (datetime(2026, 3, 9, 14, 0, tzinfo=UTC), "America/Denver", "08:00", date(2026, 3, 9)),
        (datetime(2026, 3, 6, 14, 0, tzinfo=UTC), "America/Denver", "08:00", None),
        # 02:30 does not exist on 8 March 2026 in Denver; the digest goes once the clock jumps to 03:00.
        (datetime(2026, 3, 8, 8, 59, tzinfo=UTC), "America/Denver", "02:30", None),
        (datetime(2026, 3, 8, 9, 0, tzinfo=UTC), "America/Denver", "02:30", date(2026, 3, 8)),
    ],
)
def test_due_day_in_the_clinic_time_zone(utc, zone, at, expected):
    assert due_day(utc, ZoneInfo(zone), parse_time(at)) == expected


def test_local_days_are_23_or_25_hours_on_daylight_saving_changes():
    start, end = day_bounds(date(2026, 3, 8), DENVER)
    assert (start, end - start) == (datetime(2026, 3, 8, 7, 0, tzinfo=UTC), timedelta(hours=23))
    start, end = day_bounds(date(2026, 11, 1), DENVER)
    assert (start, end - start) == (datetime(2026, 11, 1, 6, 0, tzinfo=UTC), timedelta(hours=25))
    assert reported_day(date(2026, 3, 1)) == date(2026, 2, 28)


def test_parse_time_names_the_problem():
    assert parse_time("07:30") == time(7, 30)
    with pytest.raises(ValueError, match="HH:MM"):
        parse_time("7am")


def _capture(app, clock, moment, first_name, email):
    clock.set(moment)
    return make_lead(app, email, first_name=first_name, interest="hip", message="hip pain", utm_source="newsletter")


def test_digest_lists_yesterday_in_the_clinic_time_zone_once(make_app, clock):
    app = make_app(INTAKE_EMAILS=["owner@clinic.example"], INTAKE_DIGEST="daily", INTAKE_DIGEST_TIME="08:00")
    # Sunday 22 November 2026 in Denver runs from 07:00 UTC on the 22nd to 07:00 UTC on the 23rd.
    _capture(app, clock, datetime(2026, 11, 22, 6, 59, tzinfo=UTC), "Saturday", "sat@example.com")
    early = _capture(app, clock, datetime(2026, 11, 22, 7, 0, tzinfo=UTC), "Early", "early@example.com")
    late = _capture(app, clock, datetime(2026, 11, 23, 6, 59, tzinfo=UTC), "Late", "late@example.com")
    _capture(app, clock, datetime(2026, 11, 23, 7, 0, tzinfo=UTC), "Monday", "mon@example.com")
    clock.set(datetime(2026, 11, 22, 20, 0, tzinfo=UTC))  # Sunday afternoon in Denver
    with app.app_context(), db.write_transaction() as session:
        from leads.models import Lead

        change_status(session, session.get(Lead, early), "booked", source="admin")
        suppress(session, "late@example.com", "unsubscribe", "link")
    clock.set(datetime(2026, 11, 23, 14, 59, tzinfo=UTC))  # 07:59 in Denver: the alerts go, no digest yet
    tick(app)
    tick(app)
    assert len(mails_to(app, "owner@clinic.example")) == 4  # one alert per signup, the unsubscribed one too
    assert not [m for m in mails_to(app, "owner@clinic.example") if m["Subject"].startswith("Yesterday")]

    clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))  # 08:00 in Denver
    tick(app)
    tick(app)
    clock.advance(hours=3)
    tick(app)
    with app.app_context():
        assert [d.dedupe_key for d in rows(Delivery, Delivery.kind == "digest")] == [
            "digest:2026-11-23:owner@clinic.example"
        ]
    mails = [m for m in mails_to(app, "owner@clinic.example") if m["Subject"].startswith("Yesterday")]
    assert len(mails) == 1
    mail = mails[0]
    assert mail["Subject"] == "Yesterday at NexGenEsis Healthcare: 2 new, 1 booked, 1 unsubscribed"
    text = full_text(mail)
    assert "Sunday 22 November 2026" in text
    assert "Early" in text
    assert "Late" in text
    assert "Saturday" not in text
    assert "Monday" not in text
    assert f"/admin/leads/{early}" in text
    assert f"/admin/leads/{late}" in text
    assert re.search(r"\bhip\b", text, re.I) is None  # the area of interest never appears
    assert "late@example.com" not in text


def test_no_digest_unless_enabled(make_app, clock):
    app = make_app(INTAKE_EMAILS=["owner@clinic.example"], INTAKE_DIGEST="off")
    clock.set(datetime(2026, 11, 23, 20, 0, tzinfo=UTC))
    tick(app)
    with app.app_context():
        assert rows(Delivery, Delivery.kind == "digest") == []
