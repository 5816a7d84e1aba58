"""The campaigns the app serves: loaded at start-up from CAMPAIGNS_DIR; every package reads them via registry()."""

from __future__ import annotations

import sys
from pathlib import Path

from flask import Flask, current_app

from studio.definitions import Campaign, CampaignErrors
from studio.files import load_campaigns


class CampaignRegistry:
    """The campaigns the app serves, loaded once at start-up."""

    def __init__(self, campaigns: dict[str, Campaign]) -> None:
        self._campaigns = campaigns

    def get(self, slug: str) -> Campaign | None:
        """The campaign with this slug, active or not."""
        return self._campaigns.get(slug)

    def active(self) -> list[Campaign]:
        """Campaigns whose landing pages are live."""
        return [c for c in self._campaigns.values() if c.active]

    def all(self) -> list[Campaign]:
        """Every loaded campaign."""
        return list(self._campaigns.values())


def _running_campaigns_command(argv: list[str] | None = None) -> bool:
    """True in a `flask campaigns ...` process, which reports bad files itself instead of refusing to start."""
    argv = sys.argv if argv is None else argv
    if not argv or Path(argv[0]).name not in {"flask", "__main__.py"}:
        return False
    args = iter(argv[1:])
    for arg in args:
        if arg in {"--app", "-A", "--env-file", "-e"}:
            next(args, None)
        elif not arg.startswith("-"):
            return arg == "campaigns"
    return False


def init_app(app: Flask) -> None:
    """Load campaigns from CAMPAIGNS_DIR; refuse to start when any file is invalid.

    Only `flask campaigns ...` starts anyway (with the valid campaigns), so that it can list the problems.
    """
    campaigns, problems = load_campaigns(app.config["CAMPAIGNS_DIR"], app.config.get("BLOG_DIR"))
    if problems and not _running_campaigns_command():
        raise CampaignErrors(problems)
    app.extensions["campaigns"] = CampaignRegistry(campaigns)
    app.extensions["campaign_problems"] = problems


def registry() -> CampaignRegistry:
    """The current app's campaigns."""
    return current_app.extensions["campaigns"]
