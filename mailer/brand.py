"""The brand in emails: logo and colour (BRAND_LOGO_URL, BRAND_COLOR), and the booking button.

The button is "bulletproof": a one-cell table whose colour is a bgcolor and whose link is sized by its borders,
which Outlook's Word engine draws as it draws a table, where it would drop a styled link's padding.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from flask import current_app
from markupsafe import Markup

# The landing page's form: a button lands on it, not on the top of the page.
FORM_ANCHOR = "signup"
# A paragraph made of one link and nothing else, as core.markdown renders it.
_LONE_LINK = re.compile(r'<p><a href="(?P<href>[^"]+)">(?P<label>[^<]+)</a></p>')
INK = "#1f2933"


def _luminance(color: str) -> float:
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours (1 to 21)."""
    high, low = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def brand() -> dict[str, str]:
    """Layout values: the brand colour, readable text on it, a link colour readable on white, the logo URL."""
    color = str(current_app.config.get("BRAND_COLOR") or "#0b5d57").lower()
    on_brand = "#ffffff" if contrast(color, "#ffffff") >= contrast(color, INK) else INK
    link = color if contrast(color, "#ffffff") >= 4.5 else INK
    return {
        "brand_color": color,
        "brand_text_color": on_brand,
        "link_color": link,
        "logo_url": str(current_app.config.get("BRAND_LOGO_URL") or ""),
    }


def booking_url(campaign_slug: str, step_position: str | None) -> str:
    """The campaign's consultation form, tagged so analytics credit the email (and its step) that sent the reader."""
    query = {"utm_source": "nurture", "utm_medium": "email", "utm_campaign": campaign_slug}
    if step_position:
        query["utm_content"] = step_position
    return f"{current_app.config['SITE_URL']}/{campaign_slug}?{urlencode(query)}#{FORM_ANCHOR}"


def with_booking_url(context: Mapping[str, Any], campaign_slug: str | None, step_position: str | None) -> dict:
    """The context with `booking_url` pointing at the form with UTM tags, where the email has a campaign."""
    values = dict(context)
    if campaign_slug and "booking_url" in values:
        values["booking_url"] = booking_url(campaign_slug, step_position)
    return values


def button(url: str, label: str) -> Markup:
    """A table-based button in the brand colour that Outlook draws too."""
    b = brand()
    color, text = b["brand_color"], b["brand_text_color"]
    link_style = (
        f"display:inline-block;background-color:{color};color:{text};font-family:Arial,Helvetica,sans-serif;"
        f"font-size:17px;font-weight:bold;line-height:1.2;text-decoration:none;border-radius:6px;"
        f"border-top:14px solid {color};border-bottom:14px solid {color};"
        f"border-left:28px solid {color};border-right:28px solid {color};"
    )
    return Markup(
        '<table role="presentation" class="button" border="0" cellpadding="0" cellspacing="0" '
        'style="margin:8px 0 20px 0;border-collapse:separate;">'
        '<tr><td align="center" bgcolor="{color}" style="border-radius:6px;background-color:{color};">'
        '<a href="{url}" target="_blank" style="{style}">{label}</a>'
        "</td></tr></table>"
    ).format(color=color, url=url, style=link_style, label=label)


def buttons(body_html: Markup, url: str | None) -> Markup:
    """The body (safe HTML) with every paragraph that is only a link to `url` turned into a button."""
    if not url:
        return body_html

    def replace(match: re.Match[str]) -> str:
        if html.unescape(match.group("href")) != url:
            return match.group(0)
        return str(button(url, html.unescape(match.group("label"))))

    return Markup(_LONE_LINK.sub(replace, str(body_html)))  # noqa: S704 - safe HTML in, escaped values added
