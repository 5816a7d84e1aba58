"""What the marketing team ships validates: the one test module that reads campaigns/ and content/blog/.

Every other test runs on the fixture copies under tests/fixtures/, so a copy edit never breaks them; an edit that
breaks a shipped file fails here, with the same lines `flask campaigns validate` and `flask blog validate` print.
"""

from __future__ import annotations

from blog.loader import load_posts
from tests.support.content import REPO, SHIPPED_CAMPAIGNS, SHIPPED_POSTS


def test_shipped_campaigns_validate_against_the_shipped_posts(app, runner):
    app.config["BLOG_DIR"] = str(SHIPPED_POSTS)
    result = runner.invoke(args=["campaigns", "validate", str(SHIPPED_CAMPAIGNS)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert "campaigns OK" in lines[-1]
    # Allowed and said: a step only some areas of interest get. Every first email answers at once.
    assert [line for line in lines[:-1] if ".when: warning:" not in line] == []


def test_shipped_posts_validate(app, runner):
    posts, problems = load_posts(SHIPPED_POSTS, REPO / "static")
    assert problems == []
    assert posts
    app.config["BLOG_DIR"] = str(SHIPPED_POSTS)
    result = runner.invoke(args=["blog", "validate"])
    assert result.exit_code == 0, result.output
    assert f"{len(posts)} posts OK" in result.output
