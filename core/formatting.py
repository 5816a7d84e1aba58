"""How the app shows times, phone numbers and counts to people; registered as Jinja filters by init_app.

Times are stored and exported in UTC; people read them in the clinic's time zone (CLINIC_TIMEZONE), with the
zone's abbreviation so nobody has to guess. Phone numbers are stored as E.164; people read them in the national
format of the clinic's region (DEFAULT_PHONE_REGION), or in the international one for other countries, as
`tel:` links.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from flask import Flask, current_app, has_app_context
from markupsafe import Markup, escape

DEFAULT_ZONE = "America/Denver"
DEFAULT_REGION = "US"
# Full: "Nov 23, 2026, 9:00 AM MST". Time: "9:00 AM MST". Day: "Mon, Nov 23".
TIME_STYLES = {
    "full": "%b %-d, %Y, %-I:%M %p %Z",
    "time": "%-I:%M %p %Z",
    "day": "%a, %b %-d",
    "date": "%b %-d, %Y",
}


def _zone(tz: str | None = None) -> ZoneInfo:
    if tz:
        return ZoneInfo(tz)
    name = current_app.config.get("CLINIC_TIMEZONE") if has_app_context() else None
    return ZoneInfo(name or DEFAULT_ZONE)


def to_local(moment: datetime, tz: str | None = None) -> datetime:
    """An aware (or naive UTC) moment in the clinic's time zone."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(_zone(tz))


def local_text(moment: datetime | None, style: str = "full", tz: str | None = None) -> str:
    """A moment as the clinic reads it, e.g. "Nov 23, 2026, 9:00 AM MST"; "-" for none."""
    if moment is None:
        return "-"
    return to_local(moment, tz).strftime(TIME_STYLES.get(style, style))


def local_time(moment: datetime | None, style: str = "full", tz: str | None = None) -> Markup:
    """A <time> element: the clinic's local time for people, the UTC instant in `datetime` and on hover."""
    if moment is None:
        return Markup("-")
    utc = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    iso = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    title = utc.strftime("%Y-%m-%d %H:%M UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, title, local_text(utc, style, tz))


def utc_cell(moment: datetime | None) -> str:
    """A UTC moment as spreadsheets read it ("2026-11-23 16:00:00"); exports and APIs stay in UTC."""
    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def next_business_day(moment: datetime, tz: str | None = None) -> date:
    """The clinic's next working day (Monday to Friday) after the local day of `moment`."""
    day = to_local(moment, tz).date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _region(region: str | None) -> str:
    if region:
        return region
    configured = current_app.config.get("DEFAULT_PHONE_REGION") if has_app_context() else None
    return (configured or DEFAULT_REGION).upper()


def _parse(raw: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_possible_number(number) else None


def phone_text(raw: str | None, region: str | None = None) -> str:
    """A phone number for people: national format in the clinic's region, international elsewhere; as typed if odd."""
    if not raw:
        return ""
    home = _region(region)
    number = _parse(raw, home)
    if number is None:
        return raw
    national = phonenumbers.region_code_for_number(number) == home
    style = phonenumbers.PhoneNumberFormat.NATIONAL if national else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(number, style)


def phone_uri(raw: str | None, region: str | None = None) -> str:
    """The tel: URI of a phone number (E.164), or "" when it cannot be dialled."""
    if not raw:
        return ""
    number = _parse(raw, _region(region))
    if number is None:
        return ""
    return "tel:" + phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_link(raw: str | None, region: str | None = None, label: str | None = None) -> Markup:
    """A clickable phone number (<a href="tel:...">), or the text alone when it cannot be dialled; "-" for none."""
    if not raw:
        return Markup("-")
    text = phone_text(raw, region)
    uri = phone_uri(raw, region)
    if not uri:
        return escape(text)
    shown = f"{label} {text}" if label else text
    return Markup('<a class="tel" href="{}">{}</a>').format(uri, shown)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """'1 lead', '2 leads', '1,204 leads'."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:,} {word}"


def delay_words(delay: timedelta | None) -> str:
    """A step's wait for people: 'at once', '2 days later', '36 hours later', '1 week later'."""
    if delay is None or delay.total_seconds() <= 0:
        return "at once"
    minutes = int(delay.total_seconds() // 60)
    for size, unit in ((7 * 24 * 60, "week"), (24 * 60, "day"), (60, "hour"), (1, "minute")):
        if minutes % size == 0:
            return f"{plural(minutes // size, unit)} later"
    return f"{plural(minutes, 'minute')} later"


def init_app(app: Flask) -> None:
    """Register the formatters as Jinja filters: local_time, local_text, phone, phone_uri, phone_link, plural."""
    app.jinja_env.filters.update(
        local_time=local_time,
        local_text=local_text,
        phone=phone_text,
        phone_uri=phone_uri,
        phone_link=phone_link,
        plural=plural,
        delay_words=delay_words,
    )
