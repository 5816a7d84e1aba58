"""New-lead alerts, the daily digest and signed outgoing webhooks."""

from __future__ import annotations

from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask

from alerts import composers, digest, receivers, views, webhooks
from alerts.digest import parse_time
from config import ConfigError
from mailer.base import register_composer


def check_config(config: dict) -> None:
    """Refuse settings the alerts cannot work with, naming the variable."""
    if config.get("INTAKE_DIGEST", "off") not in ("off", "daily"):
        raise ConfigError(f"INTAKE_DIGEST: {config['INTAKE_DIGEST']!r} is not a digest option (use off or daily)")
    try:
        parse_time(config.get("INTAKE_DIGEST_TIME", "08:00"))
    except ValueError as exc:
        raise ConfigError(f"INTAKE_DIGEST_TIME: {exc}") from None
    try:
        ZoneInfo(config.get("CLINIC_TIMEZONE", "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"CLINIC_TIMEZONE: {config.get('CLINIC_TIMEZONE')!r} is not an IANA time zone") from None
    for address in config.get("INTAKE_EMAILS") or []:
        if "@" not in address:
            raise ConfigError(f"INTAKE_EMAILS: {address!r} is not an email address")
    urls = config.get("WEBHOOK_URLS") or []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"WEBHOOK_URLS: {url!r} is not an http(s) URL")
    if urls and not config.get("WEBHOOK_SECRET"):
        raise ConfigError("WEBHOOK_SECRET: required when WEBHOOK_URLS is set (receivers verify the signature)")


def init_app(app: Flask) -> None:
    """Check config, connect receivers, register the email composers, worker tasks and the admin page."""
    check_config(app.config)
    receivers.connect()
    register_composer(app, "intake_alert", composers.compose_intake_alert)
    register_composer(app, "digest", composers.compose_digest)
    tasks = app.extensions.setdefault("tick_tasks", [])
    tasks.extend([digest.record_due, webhooks.deliver_due])
    app.register_blueprint(views.bp)
