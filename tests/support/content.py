"""Where the tests' campaign and post fixtures are, and where the shipped (marketing-owned) ones are."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# What the tests run on (TestConfig points CAMPAIGNS_DIR and BLOG_DIR here): copies that only tests change.
CAMPAIGNS = REPO / "tests" / "fixtures" / "campaigns"
POSTS = REPO / "tests" / "fixtures" / "blog"
# What the marketing team ships: only tests/studio/test_studio_shipped_content.py reads these.
SHIPPED_CAMPAIGNS = REPO / "campaigns"
SHIPPED_POSTS = REPO / "content" / "blog"
