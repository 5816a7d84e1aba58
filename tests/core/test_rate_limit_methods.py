"""Page views skip the rate limiter: that is only safe while every limit the app declares counts other methods."""

from __future__ import annotations

import itertools

from flask import Flask

from app import create_app
from core.extensions import UNLIMITED_METHODS, limiter
from tests.support.forms import SLUG, Visitor


def _declared_limits() -> list:
    manager = limiter.limit_manager
    decorated = itertools.chain.from_iterable(manager._decorated_limits.values())
    blueprints = itertools.chain.from_iterable(manager._blueprint_limits.values())
    return [*manager.application_limits, *manager.default_limits, *decorated, *blueprints]


def test_no_declared_limit_counts_a_method_the_limiter_skips(app: Flask) -> None:
    limits = _declared_limits()
    # The signup's and the sign-in's limits at least: an empty list would make this test say nothing.
    assert len(limits) >= 4, limits
    for limit in limits:
        assert limit.methods, f"{limit.limit} applies to every method, GET included: it would be skipped on GETs"
        skipped = {method.lower() for method in UNLIMITED_METHODS} & set(limit.methods)
        assert not skipped, f"{limit.limit} counts {sorted(skipped)}, which PostLimiter skips"


def test_page_views_past_the_signup_limit_still_answer_and_posts_are_still_refused(app: Flask, make_config) -> None:
    visitor = Visitor(create_app(make_config(SIGNUP_RATE_LIMIT="1/minute")).test_client())
    assert visitor.submit().status_code == 303
    for _ in range(5):
        page = visitor.client.get(f"/{SLUG}")
        assert page.status_code == 200
        assert "X-RateLimit-Limit" not in page.headers
    refused = visitor.submit(email="again@example.com")
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Limit"] == "1"
    assert visitor.client.head(f"/{SLUG}").status_code == 200


def test_with_limits_off_every_post_past_the_limit_goes_through_without_limit_headers(make_config) -> None:
    """RATELIMIT_ENABLED=0 (tests, benchmarks): the limiter is skipped outright and nothing is refused."""
    visitor = Visitor(create_app(make_config(SIGNUP_RATE_LIMIT="1/minute", RATELIMIT_ENABLED=False)).test_client())
    for n in range(3):
        answer = visitor.submit(email=f"again{n}@example.com")
        assert answer.status_code == 303
        assert "X-RateLimit-Limit" not in answer.headers
