"""The formatters people read: clinic-local times with their zone (across DST), phone numbers, counts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from config import Config, ConfigError
from core.formatting import (
    local_text,
    local_time,
    next_business_day,
    phone_link,
    phone_text,
    phone_uri,
    plural,
    utc_cell,
)

DENVER = "America/Denver"


@pytest.mark.parametrize(
    ("utc", "shown"),
    [
        # 2026-03-08: Denver springs forward at 2:00 local (09:00 UTC), from MST (-7) to MDT (-6).
        (datetime(2026, 3, 8, 8, 59, tzinfo=UTC), "Mar 8, 2026, 1:59 AM MST"),
        (datetime(2026, 3, 8, 9, 0, tzinfo=UTC), "Mar 8, 2026, 3:00 AM MDT"),
        # 2026-11-01: back at 2:00 MDT (08:00 UTC); 1:30 happens twice, once in each zone.
        (datetime(2026, 11, 1, 7, 30, tzinfo=UTC), "Nov 1, 2026, 1:30 AM MDT"),
        (datetime(2026, 11, 1, 8, 30, tzinfo=UTC), "Nov 1, 2026, 1:30 AM MST"),
        (datetime(2026, 11, 23, 16, 0, tzinfo=UTC), "Nov 23, 2026, 9:00 AM MST"),
        # Stored naive values are UTC.
        (datetime(2026, 7, 4, 18, 5), "Jul 4, 2026, 12:05 PM MDT"),
    ],
)
def test_times_show_in_the_clinic_zone_with_its_abbreviation_across_dst(utc: datetime, shown: str) -> None:
    assert local_text(utc, tz=DENVER) == shown


def test_time_element_keeps_the_utc_instant_for_machines_and_on_hover() -> None:
    html = str(local_time(datetime(2026, 11, 23, 16, 0, tzinfo=UTC), "time", tz=DENVER))
    assert html == '<time datetime="2026-11-23T16:00:00Z" title="2026-11-23 16:00 UTC">9:00 AM MST</time>'
    assert str(local_time(None)) == "-"


def test_another_clinic_zone_is_honoured() -> None:
    assert local_text(datetime(2026, 6, 1, 12, 0, tzinfo=UTC), "time", tz="Europe/London") == "1:00 PM BST"


def test_exports_read_utc_as_spreadsheets_parse_it() -> None:
    assert utc_cell(datetime(2026, 11, 23, 9, 0, tzinfo=UTC).astimezone()) == "2026-11-23 09:00:00"
    assert utc_cell(None) == ""


def test_next_business_day_skips_the_weekend_in_the_clinic_day() -> None:
    friday_evening_denver = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # Friday 27th, 7 PM in Denver
    assert next_business_day(friday_evening_denver, DENVER).isoformat() == "2026-11-30"  # Monday
    assert next_business_day(datetime(2026, 11, 23, 16, 0, tzinfo=UTC), DENVER).isoformat() == "2026-11-24"


@pytest.mark.parametrize(
    ("raw", "region", "shown", "uri"),
    [
        ("+13035550142", "US", "(303) 555-0142", "tel:+13035550142"),
        ("303-555-0142", "US", "(303) 555-0142", "tel:+13035550142"),
        ("+442079460958", "US", "+44 20 7946 0958", "tel:+442079460958"),
        ("+442079460958", "GB", "020 7946 0958", "tel:+442079460958"),
        ("+13035550142", "GB", "+1 303-555-0142", "tel:+13035550142"),
        ("call me maybe", "US", "call me maybe", ""),
    ],
)
def test_phones_are_national_at_home_and_international_elsewhere(raw: str, region: str, shown: str, uri: str) -> None:
    assert phone_text(raw, region) == shown
    assert phone_uri(raw, region) == uri


def test_phone_links_dial_the_e164_number_and_escape_what_cannot_be_dialled() -> None:
    assert str(phone_link("+13035550142", "US")) == '<a class="tel" href="tel:+13035550142">(303) 555-0142</a>'
    assert str(phone_link("<b>", "US")) == "&lt;b&gt;"
    assert str(phone_link(None)) == "-"


def test_counts_are_pluralised() -> None:
    assert plural(1, "lead") == "1 lead"
    assert plural(0, "lead") == "0 leads"
    assert plural(1204, "delivery", "deliveries") == "1,204 deliveries"


def test_filters_use_the_configured_zone_and_region(app) -> None:
    app.config.update(CLINIC_TIMEZONE="Europe/London", DEFAULT_PHONE_REGION="GB")
    with app.app_context():
        template = app.jinja_env.from_string("{{ t | local_time('time') }} {{ p | phone }} {{ n | plural('lead') }}")
        html = template.render(t=datetime(2026, 1, 5, 9, 0, tzinfo=UTC), p="+442079460958", n=1)
    assert html.endswith(">9:00 AM GMT</time> 020 7946 0958 1 lead")


def test_brand_colour_must_be_a_hex_colour() -> None:
    assert Config({"BRAND_COLOR": "#AABBCC"}).BRAND_COLOR == "#aabbcc"
    with pytest.raises(ConfigError, match="BRAND_COLOR: 'teal' is not a colour"):
        Config({"BRAND_COLOR": "teal"})
