"""What the provider and link tags see of a campaign: opaque ids, the tagged blog links, the custom_args."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from flask import current_app

from core import markdown as core_markdown
from studio.registry import registry

# Keys SendGrid may echo back in events; values are opaque ids, never names, slugs or health details.
ALLOWED_CUSTOM_ARGS = frozenset({"delivery_id", "campaign", "step", "kind", "lead_id"})
_ID_VALUE = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


def provider_campaign_id(slug: str) -> str:
    """A campaign as the email provider sees it: a hash keyed by SECRET_KEY, since a slug can name a condition.

    Slugs are public page addresses, so an unkeyed hash of one could be matched by anyone who guesses it.
    """
    key = str(current_app.config["SECRET_KEY"]).encode()
    return "c" + hmac.new(key, b"campaign:" + slug.encode(), hashlib.sha256).hexdigest()[:12]


def provider_step_id(campaign_slug: str | None, step_id: str) -> str:
    """A step as the provider and link tags see it: its position (1 = first email), as the admin numbers steps.

    A step id like "knee" names the interest of every reader who gets that step. A step the loaded campaigns
    do not know gets a keyed hash instead.
    """
    campaign = registry().get(campaign_slug or "")
    step = campaign.step(step_id) if campaign is not None else None
    if step is not None:
        return str(step.index + 1)
    key = str(current_app.config["SECRET_KEY"]).encode()
    return "s" + hmac.new(key, f"step:{campaign_slug}:{step_id}".encode(), hashlib.sha256).hexdigest()[:12]


def blog_url(slug: str, campaign_slug: str | None, step_id: str | None) -> str:
    """The public URL of a blog post, tagged so analytics credit the email that sent the reader."""
    query = {"utm_source": "nurture", "utm_medium": "email"}
    if campaign_slug:
        # The slug, not an opaque id: the dashboard counts blog visits per campaign by it, and the email's
        # own text, which the provider reads, already says what the campaign is about.
        query["utm_campaign"] = campaign_slug
    if step_id:
        query["utm_content"] = provider_step_id(campaign_slug, step_id)
    return f"{current_app.config['SITE_URL']}/blog/{slug}?{urlencode(query)}"


def rewrite_blog_links(markdown: str, campaign_slug: str | None, step_id: str | None) -> str:
    """Replace every `blog:<slug>` link target with the tagged public URL."""
    return core_markdown.rewrite_blog_links(markdown, lambda slug: blog_url(slug, campaign_slug, step_id))


def clean_custom_args(
    delivery_id: int | str | None,
    campaign_slug: str | None,
    step_id: str | None,
    extra: Mapping[str, Any] | None,
) -> dict[str, str]:
    """The custom_args of a message: the delivery, campaign and step as opaque ids, plus allowed extra ids."""
    args: dict[str, str] = {}
    if delivery_id is not None:
        args["delivery_id"] = str(delivery_id)
    if campaign_slug:
        args["campaign"] = provider_campaign_id(campaign_slug)
    if step_id:
        args["step"] = provider_step_id(campaign_slug, step_id)
    for key, value in (extra or {}).items():
        if key not in ALLOWED_CUSTOM_ARGS:
            raise ValueError(
                f"custom_args: {key!r} is not allowed (ids only: {', '.join(sorted(ALLOWED_CUSTOM_ARGS))})"
            )
        if value is None:
            continue
        value = str(value)
        if not _ID_VALUE.match(value):
            raise ValueError(f"custom_args: {key} must be an id (letters, digits, '.', '_', ':', '-')")
        args[key] = value
    return args
