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


def view(client, url: str, visitor: int = 1):
    """A GET from visitor number `visitor` (its own IP address): one visitor's repeats count once."""
    return client.get(url, environ_base={"REMOTE_ADDR": f"198.51.{visitor // 250}.{visitor % 250 + 1}"})


def test_landing_and_post_views_are_counted_by_day_page_and_utm(app, client):
    view(client, "/stem-cell-therapy?utm_source=Facebook&utm_campaign=spring&utm_medium=cpc", 1)
    view(client, "/stem-cell-therapy?utm_source=facebook&utm_campaign=spring", 2)
    view(client, "/stem-cell-therapy", 3)
    view(client, POST + "?utm_source=nurture&utm_campaign=stem-cell-therapy", 1)
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
    view(client, POST, 1)
    flush(app)
    view(client, POST, 2)
    view(client, POST, 3)
    flush(app)
    clock.advance(days=1)
    view(client, POST, 1)
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
    view(client, POST, 1)
    view(client, POST, 2)
    assert counts(app) == {}
    response = view(client, POST, 3)
    response.close()  # a WSGI server closes every response; that is when the batch is written
    assert counts(app) == {(date(2026, 11, 23), POST, "", ""): 3}
    assert app.extensions["pageviews"].pending == 0


def test_one_visitor_counts_once_per_half_hour_whatever_utm_tags_it_invents(app, client, clock):
    for n in range(300):
        assert view(client, f"/stem-cell-therapy?utm_source=invented-{n}").status_code == 200
    flush(app)
    assert counts(app) == {(date(2026, 11, 23), "/stem-cell-therapy", "invented-0", ""): 1}
    clock.advance(minutes=29)
    view(client, "/stem-cell-therapy?utm_source=again")
    view(client, POST)  # another page is another view
    clock.advance(minutes=2)
    view(client, "/stem-cell-therapy?utm_source=later")
    view(client, "/stem-cell-therapy", visitor=2)  # another visitor
    view(client, "/stem-cell-therapy", visitor=2)
    client.get("/stem-cell-therapy", environ_base={"REMOTE_ADDR": "198.51.0.2"}, headers={"User-Agent": "Other/1"})
    flush(app)
    day = date(2026, 11, 23)
    assert counts(app) == {
        (day, "/stem-cell-therapy", "invented-0", ""): 1,
        (day, POST, "", ""): 1,
        (day, "/stem-cell-therapy", "later", ""): 1,
        (day, "/stem-cell-therapy", "", ""): 2,  # the same address with another browser is another visitor
    }


def test_sources_past_a_pages_daily_cap_are_counted_as_other(app, client):
    from public.pageviews import OTHER, SOURCES_PER_PAGE_DAY

    view(client, "/stem-cell-therapy?utm_source=newsletter", 0)
    flush(app)
    for n in range(1, 301):  # 300 visitors, each with a source of its own
        view(client, f"/stem-cell-therapy?utm_source=invented-{n}", n)
    flush(app)
    view(client, "/stem-cell-therapy?utm_source=newsletter", 301)  # a source seen before keeps its row
    view(client, "/stem-cell-therapy", 302)  # so do direct visits
    view(client, POST + "?utm_source=nurture&utm_campaign=stem-cell-therapy", 303)  # and our own emails' links
    view(client, "/stem-cell-therapy?utm_source=late-arrival", 304)
    flush(app)
    landing = {key[2]: n for key, n in counts(app).items() if key[1] == "/stem-cell-therapy"}
    assert len(landing) == SOURCES_PER_PAGE_DAY + 2  # the cap, "other", and direct on top
    assert landing["newsletter"] == 2
    assert landing[""] == 1
    assert landing[OTHER] == 300 + 1 - (SOURCES_PER_PAGE_DAY - 1)  # no view is lost
    assert sum(landing.values()) == 304
    assert counts(app)[(date(2026, 11, 23), POST, "nurture", "stem-cell-therapy")] == 1


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
