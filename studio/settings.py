"""Site settings the admin changes without a deployment: the clinic's name, phone, postal address and time zone,
the home page's headline and intro, the privacy notice and the medical disclaimer.

The environment variables stay the defaults; a value saved in the admin wins. Each process applies the saved
values onto its app.config (every template, email and check already reads the settings there), checking the
content revision at most every CONTENT_REFRESH_SECONDS like the campaigns and posts, so a change is everywhere
within seconds without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from flask import Flask, current_app, has_app_context
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from core.clock import now
from studio.models import SiteSetting
from studio.revision import RevisionWatch
from studio.services import bump_revision, record_audit


@dataclass(frozen=True)
class Setting:
    """One setting: its variable, its label, how long it may be and whether it is several lines."""

    key: str
    label: str
    limit: int
    multiline: bool = False
    hint: str = ""


SETTINGS = (
    Setting("CLINIC_NAME", "Clinic name", 100),
    Setting("CLINIC_PHONE", "Phone", 40, hint="As patients dial it, e.g. (303) 555-0142 or +1 303 555 0142."),
    Setting("CLINIC_POSTAL_ADDRESS", "Postal address", 300, hint="Shown in the footer of the site and of every email."),
    Setting("CLINIC_TIMEZONE", "Time zone", 60, hint="As in the tz database, e.g. America/Denver."),
    Setting("HOME_HEADLINE", "Home page headline", 120),
    Setting("HOME_INTRO", "Home page introduction", 400, multiline=True),
    Setting(
        "PRIVACY_NOTICE",
        "Privacy notice (Markdown)",
        20_000,
        multiline=True,
        hint="Replaces the built-in notice at /privacy, linked from every form's privacy checkbox.",
    ),
    Setting(
        "MEDICAL_DISCLAIMER",
        "Medical disclaimer",
        600,
        multiline=True,
        hint="Replaces the built-in wording at the foot of every page, post and email.",
    ),
)
KEYS = tuple(setting.key for setting in SETTINGS)


def problem(key: str, value: str) -> str | None:
    """Why a value cannot be saved for this setting, if it cannot (an empty value means: use the default)."""
    spec = next(s for s in SETTINGS if s.key == key)
    if len(value) > spec.limit:
        return f"keep it under {spec.limit:,} characters (it has {len(value):,})"
    if not value:
        return None
    if not spec.multiline and "\n" in value:
        return "must be one line"
    if key == "CLINIC_TIMEZONE":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            return f"{value!r} is not a time zone (use a name like America/Denver)"
    if key == "CLINIC_PHONE":
        region = current_app.config.get("DEFAULT_PHONE_REGION", "US") if has_app_context() else "US"
        try:
            valid = phonenumbers.is_possible_number(phonenumbers.parse(value, region))
        except phonenumbers.NumberParseException:
            valid = False
        if not valid:
            return f"{value!r} is not a phone number"
    return None


def stored(session: Session) -> dict[str, SiteSetting]:
    """The settings saved in the admin, by key."""
    return {row.key: row for row in session.scalars(select(SiteSetting))}


def save_settings(session: Session, values: dict[str, str], actor: str | None) -> dict[str, str]:
    """Save every changed setting (an empty one goes back to its default); returns problems by key, saving
    nothing when there is any. Every change is in the audit log."""
    cleaned = {key: (values.get(key) or "").replace("\r\n", "\n").strip() for key in KEYS if key in values}
    problems = {key: found for key, value in cleaned.items() if (found := problem(key, value))}
    if problems:
        return problems
    rows = stored(session)
    changed = False
    for key, value in cleaned.items():
        row = rows.get(key)
        before = row.value if row else None
        if (value or None) == before:
            continue
        if value:
            if row is None:
                session.add(SiteSetting(key=key, value=value, updated_by=actor, updated_at=now()))
            else:
                row.value, row.updated_by, row.updated_at = value, actor, now()
        else:
            session.delete(row)
        record_audit(session, actor, "setting", "settings", {"key": key, "before": before, "after": value or None})
        changed = True
    if changed:
        session.flush()
        bump_revision(session)
        session.info["content_changed"] = True
    return {}


class SiteSettings(RevisionWatch):
    """One process's view of the saved settings, written onto app.config when the content revision moves."""

    def __init__(self, app: Flask, refresh_seconds: float) -> None:
        super().__init__(app, refresh_seconds)
        # What the environment said at start-up: a setting cleared in the admin goes back to it.
        self.defaults = {key: app.config.get(key, "") for key in KEYS}
        self._applied: set[str] = set()

    def current(self) -> None:
        """Apply the saved settings when the last check is older than the refresh interval."""
        self.check()

    def load(self, conn: Connection) -> dict[str, str]:
        """The settings saved in the admin (before `flask db upgrade`, the environment's values stand)."""
        return dict(conn.execute(select(SiteSetting.key, SiteSetting.value)).all())

    def adopt(self, loaded: dict[str, str]) -> None:
        """Write the saved settings onto app.config."""
        self._apply(loaded)

    def _apply(self, rows: dict[str, str]) -> None:
        # Only keys saved now or before are written, so a setting never saved keeps whatever the config holds.
        for key in self._applied - set(rows):
            self.app.config[key] = self.defaults[key]
        for key, value in rows.items():
            if key in self.defaults:
                self.app.config[key] = value
        self._applied = set(rows) & set(self.defaults)


def init_app(app: Flask) -> None:
    """Hold the saved settings and apply them before every request."""
    app.extensions["settings"] = SiteSettings(app, float(app.config.get("CONTENT_REFRESH_SECONDS", 2)))
    app.before_request(refresh)


def refresh() -> None:
    """Bring app.config up to date with the settings saved in the admin (cheap between refresh intervals)."""
    held = current_app.extensions.get("settings")
    if isinstance(held, SiteSettings):
        held.current()
