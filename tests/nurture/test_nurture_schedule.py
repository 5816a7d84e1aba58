"""The pure scheduling rules: send windows across DST, weekends, time zones, scale and conditions."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from nurture.schedule import add_delay, due_at, fit_window, timeline
from studio.definitions import Campaign, LandingPage, SendWindow, Step

DENVER = ZoneInfo("America/Denver")
BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS_9_TO_5 = SendWindow(timezone="America/Denver")


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)


def step(id_: str, delay: timedelta, *, interests: tuple = (), any_time: bool = False, index: int = 0) -> Step:
    return Step(
        id=id_,
        index=index,
        delay=delay,
        body_path=Path(f"{id_}.md"),
        subject=f"Subject {id_}",
        preheader="",
        markdown="Hi",
        interests=interests,
        any_time=any_time,
    )


def test_inside_the_window_leaves_at_once():
    moment = local(DENVER, 2026, 11, 24, 11, 30)  # Tuesday
    assert fit_window(moment, WEEKDAYS_9_TO_5) == moment.astimezone(UTC)


def test_before_opening_waits_for_nine():
    assert fit_window(local(DENVER, 2026, 11, 24, 6, 0), WEEKDAYS_9_TO_5) == local(DENVER, 2026, 11, 24, 9, 0)


def test_friday_evening_waits_for_monday_nine():
    result = fit_window(local(DENVER, 2026, 11, 27, 17, 30), WEEKDAYS_9_TO_5)
    assert result == local(DENVER, 2026, 11, 30, 9, 0)
    assert result.tzinfo == UTC


def test_closing_time_itself_is_outside_the_window():
    assert fit_window(local(DENVER, 2026, 11, 24, 17, 0), WEEKDAYS_9_TO_5) == local(DENVER, 2026, 11, 25, 9, 0)


def test_spring_forward_weekend_in_denver_opens_at_nine_daylight_time():
    # DST starts Sunday 8 March 2026: Monday 09:00 is 15:00 UTC, not 16:00.
    result = fit_window(local(DENVER, 2026, 3, 6, 18, 0), WEEKDAYS_9_TO_5)
    assert result == datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
    assert result.astimezone(DENVER).hour == 9


def test_fall_back_weekend_in_denver_opens_at_nine_standard_time():
    # DST ends Sunday 1 November 2026: Monday 09:00 is 16:00 UTC again.
    result = fit_window(local(DENVER, 2026, 10, 30, 18, 0), WEEKDAYS_9_TO_5)
    assert result == datetime(2026, 11, 2, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("friday", "monday_utc"),
    [
        ((2026, 3, 27), datetime(2026, 3, 30, 7, 0, tzinfo=UTC)),  # Europe springs forward on 29 March
        ((2026, 10, 23), datetime(2026, 10, 26, 8, 0, tzinfo=UTC)),  # and falls back on 25 October
    ],
)
def test_european_lead_across_dst_gets_monday_nine_berlin_time(friday, monday_utc):
    result = fit_window(local(BERLIN, *friday, 18, 0), WEEKDAYS_9_TO_5, "Europe/Berlin")
    assert result == monday_utc
    assert result.astimezone(BERLIN).time() == time(9, 0)


def test_window_follows_the_leads_zone_tokyo_versus_denver():
    moment = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # Monday 09:00 in Denver, Tuesday 01:00 in Tokyo
    assert fit_window(moment, WEEKDAYS_9_TO_5) == moment
    tokyo = fit_window(moment, WEEKDAYS_9_TO_5, "Asia/Tokyo")
    assert tokyo == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    assert tokyo.astimezone(ZoneInfo("Asia/Tokyo")).hour == 9


def test_unknown_lead_zone_falls_back_to_the_campaigns():
    moment = local(DENVER, 2026, 11, 24, 6, 0)
    assert fit_window(moment, WEEKDAYS_9_TO_5, "Mars/Olympus") == local(DENVER, 2026, 11, 24, 9, 0)


def test_weekend_only_window():
    window = SendWindow(days=("sat", "sun"), start=time(10, 0), end=time(12, 0), timezone="America/Denver")
    assert fit_window(local(DENVER, 2026, 11, 23, 9, 0), window) == local(DENVER, 2026, 11, 28, 10, 0)


def test_whole_days_keep_the_local_clock_across_dst():
    # Saturday 10:00 MST + 2 days = Monday 10:00 MDT: 47 hours later, not 48.
    start = local(DENVER, 2026, 3, 7, 10, 0)
    result = add_delay(start, timedelta(days=2), DENVER)
    assert result.astimezone(DENVER).replace(tzinfo=None) == datetime(2026, 3, 9, 10, 0)
    assert result - start == timedelta(hours=47)


def test_hours_are_exact_across_dst():
    start = local(DENVER, 2026, 3, 7, 10, 0)
    assert add_delay(start, timedelta(hours=36), DENVER) - start == timedelta(hours=36)


def test_due_at_adds_the_delay_then_fits_the_window():
    welcome_sent = local(DENVER, 2026, 11, 26, 15, 0)  # Thursday afternoon
    assert due_at(welcome_sent, step("s", timedelta(days=2)), WEEKDAYS_9_TO_5) == local(DENVER, 2026, 11, 30, 9, 0)


def test_any_time_step_ignores_the_window():
    night = local(DENVER, 2026, 11, 28, 23, 0)  # Saturday night
    assert due_at(night, step("welcome", timedelta(0), any_time=True), WEEKDAYS_9_TO_5) == night.astimezone(UTC)
    assert due_at(night, step("welcome", timedelta(0)), WEEKDAYS_9_TO_5) == local(DENVER, 2026, 11, 30, 9, 0)


def test_time_scale_divides_delays_and_ignores_the_window():
    night = local(DENVER, 2026, 11, 28, 23, 0)
    result = due_at(night, step("s", timedelta(days=2)), WEEKDAYS_9_TO_5, scale=1440)
    assert result - night == timedelta(minutes=2)


def _campaign(steps: tuple[Step, ...]) -> Campaign:
    page = LandingPage(path=Path("page.md"), title="t", description="d", headline="h", intro="", markdown="")
    return Campaign(
        slug="demo",
        name="Demo",
        active=True,
        double_opt_in=False,
        window=WEEKDAYS_9_TO_5,
        exit_statuses=("booked",),
        page=page,
        steps=steps,
        directory=Path("."),
    )


CAMPAIGN = _campaign(
    (
        step("welcome", timedelta(0), any_time=True, index=0),
        step("science", timedelta(days=2), index=1),
        step("knee", timedelta(days=2), interests=("knee",), index=2),
        step("book", timedelta(days=3), index=3),
    )
)


def test_timeline_for_a_late_monday_signup():
    plan = timeline(CAMPAIGN, datetime(2026, 11, 24, 5, 15, tzinfo=UTC), "America/Denver", "knee")
    assert [(p.step.id, p.local.strftime("%a %H:%M"), p.skipped) for p in plan] == [
        ("welcome", "Mon 22:15", None),
        ("science", "Thu 09:00", None),
        ("knee", "Mon 09:00", None),
        ("book", "Thu 09:00", None),
    ]


def test_timeline_skips_conditional_steps_and_keeps_later_dates():
    knee = timeline(CAMPAIGN, datetime(2026, 11, 24, 5, 15, tzinfo=UTC), "America/Denver", "knee")
    hip = timeline(CAMPAIGN, datetime(2026, 11, 24, 5, 15, tzinfo=UTC), "America/Denver", "hip")
    assert hip[2].skipped
    assert "interest" in hip[2].skipped
    assert knee[2].skipped is None
    assert hip[3].at == knee[3].at
    unknown = timeline(CAMPAIGN, datetime(2026, 11, 24, 5, 15, tzinfo=UTC), None, None)
    assert unknown[2].skipped
