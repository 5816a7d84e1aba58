"""Twenty people (or one impatient person) post the same email at the same moment against a real server."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from core.db import db
from leads.models import Lead, Submission
from tests.support.forms import SLUG, VALID, hidden_fields

POSTS = 20


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture
def server(app_with):
    """The app behind werkzeug's threaded server on a free loopback port."""
    application = app_with(SIGNUP_RATE_LIMIT="1000/minute")
    httpd = make_server("127.0.0.1", 0, application, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield application, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(timeout=10)


@pytest.mark.slow
def test_concurrent_signups_with_one_email_make_one_lead(server):
    application, base = server
    # Each browser loads the page first (its own session cookie and CSRF token), then all post at once.
    browsers = []
    for _ in range(POSTS):
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()), _NoRedirect)
        with opener.open(f"{base}/{SLUG}?utm_source=race", timeout=30) as page:
            hidden = hidden_fields(page.read().decode())
        browsers.append((opener, urlencode({**hidden, **VALID}).encode()))

    barrier = threading.Barrier(POSTS)
    statuses: list[int] = []
    lock = threading.Lock()

    def post(opener, body):
        barrier.wait(timeout=30)
        try:
            with opener.open(urllib.request.Request(f"{base}/{SLUG}", data=body, method="POST"), timeout=60) as r:
                status = r.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=post, args=browser) for browser in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)

    assert sorted(statuses) == [303] * POSTS
    with application.app_context():
        assert db.session.scalar(select(func.count()).select_from(Lead)) == 1
        assert db.session.scalar(select(func.count()).select_from(Submission)) == POSTS
        assert db.session.scalars(select(Lead)).one().email == "dana.whitfield@example.com"
