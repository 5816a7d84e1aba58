"""Page views: counted on the server per day, page, UTM source and campaign; buffered; no cookies."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import select

from app import create_app
from core.db import db
from public.models import PageView

POST = "/blog/stem-cells-or-prp-which-fits-your-injury"


def counts(app) -> dict[tuple, int]:
    with app.app_context():
        rows = db.session.scalars(select(PageView)).all()
        return {(r.day, r.page, r.utm_source, r.utm_campaign): r.views for r in rows}


def flush(app) -> int:
    return app.extensions["pageviews"].flush()


def test_landing_and_post_views_are_counted_by_day_page_and_utm(app, client):
    client.get("/stem-cell-therapy?utm_source=Facebook&utm_campaign=spring&utm_medium=cpc")
    client.get("/stem-cell-therapy?utm_source=facebook&utm_campaign=spring")
    client.get("/stem-cell-therapy")
    client.get(POST + "?utm_source=nurture&utm_campaign=stem-cell-therapy")
    assert counts(app) == {}  # nothing is written during the request
    assert flush(app) == 4
    # The frozen clock says 2026-11-23 16:00 UTC: 09:00 that day at the clinic in Denver.
    day = date(2026, 11, 23)
    assert counts(app) == {
        (day, "/stem-cell-therapy", "facebook", "spring"): 2,
        (day, "/stem-cell-therapy", "", ""): 1,
        (day, POST, "nurture", "stem-cell-therapy"): 1,
    }


def test_later_flushes_add_to_the_same_rows(app, client, clock):
    client.get(POST)
    flush(app)
    client.get(POST)
    client.get(POST)
    flush(app)
    clock.advance(days=1)
    client.get(POST)
    flush(app)
    assert counts(app) == {(date(2026, 11, 23), POST, "", ""): 3, (date(2026, 11, 24), POST, "", ""): 1}


def test_only_successful_views_of_landing_pages_and_posts_count(app, client):
    client.get("/")
    client.get("/blog/")
    client.get("/no-such-page")
    client.get("/blog/no-such-post")
    client.get("/sitemap.xml")
    client.get("/stem-cell-therapy/thank-you")
    client.head("/stem-cell-therapy")
    client.head(POST)
    assert flush(app) == 0
    assert counts(app) == {}


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0)",
        "Screaming Frog SEO Spider/19.0",
        "SomeCrawler/1.0",
    ],
)
def test_bots_are_not_counted(app, client, agent):
    client.get("/stem-cell-therapy", headers={"User-Agent": agent})
    client.get(POST, headers={"User-Agent": agent})
    assert flush(app) == 0


def test_counting_sets_no_cookies(client):
    for path in (POST, "/blog/", "/"):
        assert client.get(path + "?utm_source=x").headers.getlist("Set-Cookie") == []
    # The landing page's only cookie is Flask's session holding the form's CSRF token, never a tracking id.
    landing = client.get("/stem-cell-therapy?utm_source=x")
    live = [c for c in landing.headers.getlist("Set-Cookie") if "Max-Age=0" not in c]
    assert [c.split("=", 1)[0] for c in live] in ([], ["session"])


def test_a_full_buffer_is_written_after_the_response(make_config):
    app = create_app(make_config(PAGEVIEW_FLUSH_EVERY=3, PAGEVIEW_FLUSH_SECONDS=3600))
    client = app.test_client()
    client.get(POST)
    client.get(POST)
    assert counts(app) == {}
    response = client.get(POST)
    response.close()  # a WSGI server closes every response; that is when the batch is written
    assert counts(app) == {(date(2026, 11, 23), POST, "", ""): 3}
    assert app.extensions["pageviews"].pending == 0


def test_concurrent_flushes_lose_no_views(app):
    buffer = app.extensions["pageviews"]
    key = (date(2026, 11, 23), "/stem-cell-therapy", "", "")

    def work() -> None:
        for _ in range(20):
            buffer.add(key)
            buffer.flush()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    buffer.flush()
    assert counts(app) == {key: 80}


def test_a_failed_write_keeps_the_counts_for_the_next_try(app, client):
    client.get(POST)
    buffer = app.extensions["pageviews"]
    engine = buffer.engine
    buffer.engine = None  # as if the database were unreachable
    assert buffer.flush() == 0
    assert buffer.pending == 1
    buffer.engine = engine
    assert buffer.flush() == 1
    assert counts(app) == {(date(2026, 11, 23), POST, "", ""): 1}


def test_a_row_the_database_refuses_is_dropped_and_never_blocks_the_others(app, backend):
    if backend == "sqlite":
        pytest.skip("SQLite stores over-long text, so it refuses no row; runs on PostgreSQL")
    buffer = app.extensions["pageviews"]
    good = (date(2026, 11, 23), "/stem-cell-therapy", "", "")
    poison = (date(2026, 11, 23), "/stem-cell-therapy", "x" * 5000, "")  # wider than its column
    buffer.add(good)
    buffer.add(poison)
    for _ in range(5):
        buffer.flush()
        buffer.add(good)
    buffer.flush()
    assert counts(app) == {good: 6}
    assert buffer.pending == 0
