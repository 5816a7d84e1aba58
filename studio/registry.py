"""The campaigns the app serves: the live published versions in the database, held by each process.

Each process keeps the campaigns of one content revision and compares that number with the database's at most
every CONTENT_REFRESH_SECONDS (one tiny query, none per page view in between), so a publish anywhere is live
everywhere within seconds without a restart. A publish in this process is seen at once (after its commit).
"""

from __future__ import annotations

from functools import cached_property

from flask import Flask, current_app
from sqlalchemy import Connection, event
from sqlalchemy.orm import Session

from studio.definitions import Campaign
from studio.revision import RevisionWatch
from studio.settings import refresh as refresh_settings


class CampaignRegistry:
    """The campaigns of one content revision."""

    def __init__(self, campaigns: dict[str, Campaign]) -> None:
        self._campaigns = campaigns

    def get(self, slug: str) -> Campaign | None:
        """The campaign with this slug (active, inactive or archived)."""
        return self._campaigns.get(slug)

    def active(self) -> list[Campaign]:
        """Campaigns whose landing pages are live."""
        return [c for c in self._campaigns.values() if c.active and not c.archived]

    @cached_property
    def active_slugs(self) -> frozenset[str]:
        """The slugs of active(), worked out once per content revision (asked after every page)."""
        return frozenset(c.slug for c in self.active())

    def all(self) -> list[Campaign]:
        """Every published campaign, archived ones included (their leads and deliveries still name them)."""
        return list(self._campaigns.values())

    def archived_slugs(self) -> list[str]:
        """Campaigns taken off the site, whose sequences wait."""
        return [c.slug for c in self._campaigns.values() if c.archived]


class LiveRegistry(RevisionWatch):
    """One process's copy of the live campaigns, refreshed when the database's content revision moves."""

    what = "campaigns"

    def __init__(self, app: Flask, refresh_seconds: float) -> None:
        super().__init__(app, refresh_seconds)
        self._current = CampaignRegistry({})

    def held(self) -> CampaignRegistry:
        """The campaigns as last loaded, without asking the database (for code outside a request)."""
        return self._current

    def current(self) -> CampaignRegistry:
        """The campaigns, checking the revision when the last check is older than the refresh interval."""
        self.check()
        return self._current

    def load(self, conn: Connection) -> dict[str, Campaign]:
        """Every campaign's live version."""
        from studio.services import live_campaigns

        with Session(bind=conn) as session:
            return live_campaigns(session)

    def adopt(self, loaded: dict[str, Campaign]) -> None:
        """Serve these campaigns from now on."""
        self._current = CampaignRegistry(loaded)


def _after_commit(session: Session) -> None:
    if session.info.pop("content_changed", False) and current_app:
        for name in ("campaigns", "posts", "settings"):
            held = current_app.extensions.get(name)
            if hasattr(held, "stale"):
                held.stale()


def init_app(app: Flask) -> None:
    """Hold this process's live campaigns (loaded on first use, after the database is ready)."""
    app.extensions["campaigns"] = LiveRegistry(app, float(app.config.get("CONTENT_REFRESH_SECONDS", 2)))
    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "after_commit", _after_commit)


def find_campaign(slug: str) -> Campaign | None:
    """The campaign with this slug, asking the database at once when this process does not know it yet.

    For the worker: a campaign published a moment ago elsewhere must never look removed to it.
    """
    found = registry().get(slug)
    live = current_app.extensions["campaigns"]
    if found is None and isinstance(live, LiveRegistry) and live.refresh():
        found = live.held().get(slug)
    return found


def registry() -> CampaignRegistry:
    """The current app's campaigns (the site settings are brought up to date on the way: the worker reads both)."""
    refresh_settings()
    return served(current_app._get_current_object())  # type: ignore[attr-defined]


def served(app: Flask) -> CampaignRegistry:
    """The app's campaigns, without the site settings' check: a request's before_request hook has made it."""
    live = app.extensions["campaigns"]
    return live.current() if isinstance(live, LiveRegistry) else live
