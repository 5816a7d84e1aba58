"""When is a step due? Pure functions: no Flask, no database, every moment aware and returned in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from studio.definitions import WEEKDAYS, Campaign, SendWindow, Step

# A window open at least one weekday is always found within a week; one more day covers DST edge cases.
_SEARCH_DAYS = 8


def zone(name: str | None, fallback: str) -> ZoneInfo:
    """The lead's zone when it is a real one, else the fallback (the campaign's)."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(fallback)


def _local(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """A wall-clock time on a day, as an aware UTC moment; a time skipped by spring-forward moves past the gap."""
    naive = datetime.combine(day, clock)
    moment = naive.replace(tzinfo=tz).astimezone(UTC)
    # zoneinfo reads a non-existent time with the offset before the change, which lands after the gap: keep it.
    return moment


def fit_window(earliest: datetime, window: SendWindow, lead_tz: str | None = None) -> datetime:
    """The first moment at or after `earliest` inside the send window, in the lead's zone where known."""
    if earliest.tzinfo is None:
        raise ValueError("fit_window needs an aware datetime")
    tz = zone(lead_tz, window.timezone)
    earliest = earliest.astimezone(UTC)
    first_day = earliest.astimezone(tz).date()
    for offset in range(_SEARCH_DAYS):
        day = first_day + timedelta(days=offset)
        if WEEKDAYS[day.weekday()] not in window.days:
            continue
        opens, closes = _local(day, window.start, tz), _local(day, window.end, tz)
        if earliest < opens:
            return opens
        if earliest < closes:
            return earliest
    raise ValueError("the send window never opens")  # pragma: no cover - SendWindow requires a weekday


def add_delay(moment: datetime, delay: timedelta, tz: ZoneInfo) -> datetime:
    """Whole days keep the local clock time across DST (2d after 10:00 is 10:00); other delays are exact."""
    if delay and delay % timedelta(days=1) == timedelta(0):
        local = moment.astimezone(tz)
        wall = local.replace(tzinfo=None) + delay
        return wall.replace(tzinfo=tz).astimezone(UTC)
    # Aware arithmetic in Python moves the wall clock; exact delays are added in UTC.
    return moment.astimezone(UTC) + delay


def due_at(
    previous: datetime, step: Step, window: SendWindow, lead_tz: str | None = None, scale: float = 1.0
) -> datetime:
    """When `step` is due, counted from the previous step (or the signup).

    With a time scale other than 1 (demos only), the delay is divided by the scale and the window ignored.
    """
    if scale != 1:
        return previous.astimezone(UTC) + step.delay / scale
    earliest = add_delay(previous, step.delay, zone(lead_tz, window.timezone))
    if step.any_time:
        return earliest
    return fit_window(earliest, window, lead_tz)


@dataclass(frozen=True)
class PlannedStep:
    """One line of a campaign's timeline for a given lead."""

    step: Step
    at: datetime  # UTC
    local: datetime  # in the zone used for the window
    skipped: str | None = None  # why the lead does not get it


def timeline(
    campaign: Campaign, signup_at: datetime, tz: str | None = None, interest: str | None = None, scale: float = 1.0
) -> list[PlannedStep]:
    """Every step with the moment it would leave for a lead who signs up at `signup_at`.

    A step a lead does not get (condition on interest) still takes its place in time, so the steps after it
    keep the same day numbers for everyone.
    """
    local_zone = zone(tz, campaign.window.timezone)
    plan, previous = [], signup_at.astimezone(UTC)
    for step in campaign.steps:
        at = due_at(previous, step, campaign.window, tz, scale)
        reason = None if step.applies_to(interest) else "condition: area of interest not listed for this step"
        plan.append(PlannedStep(step=step, at=at, local=at.astimezone(local_zone), skipped=reason))
        previous = at
    return plan
