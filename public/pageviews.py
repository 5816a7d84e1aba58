"""Page views counted on the server: no cookies, no third-party scripts, buffered and flushed in batches.

Each process keeps counts in memory keyed by (day, page, utm_source, utm_campaign) and adds them to
page_views with one upsert per key, so several workers (or processes) can flush into the same rows.

What a visitor can add is bounded without cookies: views of a page by one visitor (a salted hash of IP and
browser, kept in memory only) count once per REPEAT_WINDOW, and a page keeps at most SOURCES_PER_PAGE_DAY
(utm_source, utm_campaign) pairs a day; further pairs are counted under "other" (direct visits and the
nurture emails' own links always keep their row).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import re
import secrets
import threading
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask, current_app, has_request_context, request
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from werkzeug.wrappers import Response

from core import clock
from core.db import db
from core.query import first_values
from public.models import PageView

log = logging.getLogger(__name__)

BOT_MARKERS = ("bot", "crawler", "spider", "slurp", "headless", "lighthouse")
FLUSH_EVERY = 50
FLUSH_SECONDS = 5.0
MAX_KEYS = 10_000  # if the database stays down, stop growing rather than eat memory
# A key the database refuses this many flushes in a row is dropped, so it cannot block the others forever.
MAX_FAILURES = 3
# One visitor's views of one page count once in this window (reloads, a bot inventing UTM tags).
REPEAT_WINDOW = timedelta(minutes=30)
RECENT_VISITORS = 20_000  # remembered per process (about 4 MB); the oldest are forgotten first
# Distinct (utm_source, utm_campaign) rows a page may gain in a day; later ones are counted as OTHER.
SOURCES_PER_PAGE_DAY = 50
OTHER = "other"
_BOT = re.compile("|".join(map(re.escape, BOT_MARKERS)))

Key = tuple[date, str, str, str]
_buffers: weakref.WeakSet[PageViewBuffer] = weakref.WeakSet()


class PageViewBuffer:
    """Counts waiting to be written; thread-safe, one per app."""

    def __init__(
        self,
        engine: Engine,
        flush_every: int = FLUSH_EVERY,
        flush_seconds: float = FLUSH_SECONDS,
        own_campaigns: Iterable[str] | Callable[[], Iterable[str]] = (),
    ) -> None:
        self.engine = engine
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        # utm_campaign values of the nurture emails' own links: their rows never go to OTHER.
        # A callable is asked at each flush: campaigns are published while the app runs.
        self._own_campaigns = own_campaigns if callable(own_campaigns) else frozenset(own_campaigns)
        self._salt = secrets.token_bytes(16)  # never stored: a visitor's hash means nothing after a restart
        self._recent: OrderedDict[bytes, datetime] = OrderedDict()
        self._counts: Counter[Key] = Counter()
        self._pending = 0
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._failures: dict[Key, int] = {}
        _buffers.add(self)

    def first_view(self, visitor: str, page: str, moment: datetime) -> bool:
        """False when this visitor viewed this page within REPEAT_WINDOW before `moment`."""
        digest = hashlib.blake2b(f"{visitor}\x00{page}".encode(), key=self._salt, digest_size=16).digest()
        with self._lock:
            seen = self._recent.pop(digest, None)
            if seen is not None and moment - seen < REPEAT_WINDOW:
                self._recent[digest] = seen  # the window runs from the view that counted
                return False
            self._recent[digest] = moment
            while len(self._recent) > RECENT_VISITORS:
                self._recent.popitem(last=False)
            return True

    def add(self, key: Key, views: int = 1) -> None:
        """Count `views` more for this key."""
        with self._lock:
            if key not in self._counts and len(self._counts) >= MAX_KEYS:
                return
            self._counts[key] += views
            self._pending += views

    @property
    def pending(self) -> int:
        """Views counted but not yet written."""
        with self._lock:
            return self._pending

    def due(self) -> bool:
        """Whether enough views or time have gathered to write them."""
        with self._lock:
            if not self._pending:
                return False
            return self._pending >= self.flush_every or time.monotonic() - self._last_flush >= self.flush_seconds

    def flush(self) -> int:
        """Write the buffered counts; returns the number of views written (0 if none or on failure)."""
        with self._flush_lock:
            with self._lock:
                counts, self._counts = self._counts, Counter()
                self._pending = 0
                self._last_flush = time.monotonic()
            if not counts:
                return 0
            try:
                _upsert(self.engine, counts, self.own_campaigns)
            except Exception as exc:  # noqa: BLE001 - counts must never break a page
                log.warning("page views not saved as a batch (%s); saving them one by one", type(exc).__name__)
                return self._flush_one_by_one(counts)
            self._failures.clear()
            return sum(counts.values())

    @property
    def own_campaigns(self) -> frozenset[str]:
        """The campaign slugs whose own links count under their name."""
        own = self._own_campaigns
        return frozenset(own()) if callable(own) else own

    def _flush_one_by_one(self, counts: Counter[Key]) -> int:
        """Write each key alone, so one row the database refuses cannot stop all counting; retry the others."""
        written = 0
        for key, views in counts.items():
            try:
                _upsert(self.engine, Counter({key: views}), self.own_campaigns)
            except Exception:  # noqa: BLE001 - kept for the next flush, dropped after MAX_FAILURES tries
                failures = self._failures.get(key, 0) + 1
                if failures >= MAX_FAILURES:
                    self._failures.pop(key, None)
                    log.error("dropped %d page view(s) the database refused %d times", views, failures)
                else:
                    self._failures[key] = failures
                    self.add(key, views)
            else:
                self._failures.pop(key, None)
                written += views
        return written


def _bounded(conn: Connection, counts: Counter[Key], own_campaigns: frozenset[str]) -> Counter[Key]:
    """The counts with pairs past a page's daily SOURCES_PER_PAGE_DAY moved to OTHER; the most viewed get in first."""
    known: dict[tuple[date, str], set[tuple[str, str]]] = {}
    for day, page in {(day, page) for day, page, _, _ in counts}:
        rows = conn.execute(
            select(PageView.utm_source, PageView.utm_campaign).where(PageView.day == day, PageView.page == page)
        )
        known[(day, page)] = {(source, campaign) for source, campaign in rows}
    out: Counter[Key] = Counter()
    for (day, page, source, campaign), views in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        pairs = known[(day, page)]
        ours = (source, campaign) == ("", "") or (source == "nurture" and campaign in own_campaigns)
        if (source, campaign) not in pairs and not ours and len(pairs) >= SOURCES_PER_PAGE_DAY:
            source = campaign = OTHER
        pairs.add((source, campaign))
        out[(day, page, source, campaign)] += views
    return out


def _upsert(engine: Engine, counts: Counter[Key], own_campaigns: frozenset[str] = frozenset()) -> None:
    dialect = engine.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(PageView)
    stmt = stmt.on_conflict_do_update(
        index_elements=["day", "page", "utm_source", "utm_campaign"],
        set_={"views": func.coalesce(PageView.views, 0) + stmt.excluded.views},
    )
    with engine.connect() as conn:
        # SQLite: take the write lock at BEGIN so concurrent flushes wait instead of failing.
        conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            rows = [
                {"day": day, "page": page, "utm_source": source, "utm_campaign": campaign, "views": views}
                for (day, page, source, campaign), views in sorted(_bounded(conn, counts, own_campaigns).items())
            ]
            conn.execute(stmt, rows)


def is_bot(user_agent: str) -> bool:
    """Crawlers and test robots are not visitors."""
    return _BOT.search(user_agent.lower()) is not None


def _clip(value: str | None, limit: int = 100) -> str:
    # PostgreSQL refuses NUL: one such key would fail every later flush of the batch it sits in.
    return (value or "").replace("\x00", "").strip()[:limit]


def record(page: str, utm_source: str | None = "", utm_campaign: str | None = "") -> None:
    """Count one view of `page` today (clinic time) from this UTM source and campaign; bots and HEADs are skipped."""
    # Each proxy access looks up the context again: read the request and the app once (this runs per page view).
    req = request._get_current_object() if has_request_context() else None  # type: ignore[attr-defined]
    agent = ""
    if req is not None:
        # req.headers.get("User-Agent", "") without the header lookup's four calls (werkzeug reads the environ).
        agent = req.environ.get("HTTP_USER_AGENT", "")
        if req.method != "GET" or is_bot(agent):
            return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    buffer: PageViewBuffer | None = app.extensions.get("pageviews")
    if buffer is None:
        return
    moment = app.extensions.get("clock", clock.SYSTEM).now()
    page = _clip(page, 200)
    if req is not None and not buffer.first_view(f"{req.remote_addr}\x00{agent}", page, moment):
        return
    day = moment.astimezone(ZoneInfo(app.config.get("CLINIC_TIMEZONE") or "UTC")).date()
    # Lowercase before clipping: some letters grow when lowercased and would overflow the column.
    buffer.add((day, page, _clip((utm_source or "").lower()), _clip((utm_campaign or "").lower())))


def record_request(page: str) -> None:
    """Count a view of `page` with the UTM source and campaign of the current request's URL."""
    # A plain dict: MultiDict.get raises and catches an HTTP exception for each tag the address does not carry.
    args = first_values()
    record(page, args.get("utm_source"), args.get("utm_campaign"))


# The landing page's view: it answers 200 only for an active campaign's slug, so its 200s are the views to count.
LANDING_ENDPOINT = "leads.landing"


def _after_request(response: Response) -> Response:
    # Landing pages belong to the leads blueprint, below this one; count them here so that view needs no change.
    if response.status_code == 200:
        req = request._get_current_object()  # type: ignore[attr-defined]
        if req.endpoint == LANDING_ENDPOINT and req.method == "GET":
            record_request(req.path)
    buffer: PageViewBuffer | None = current_app.extensions.get("pageviews")
    if buffer is not None and buffer.due():
        # Written after the response has gone out, so the visitor never waits for the database.
        response.call_on_close(buffer.flush)
    return response


def flush_all() -> None:
    """Write every buffer in this process (at exit)."""
    for buffer in list(_buffers):
        if buffer.pending:
            buffer.flush()


def init_app(app: Flask) -> None:
    """Create this app's buffer and count landing-page views after each request."""
    campaigns = app.extensions.get("campaigns")
    app.extensions["pageviews"] = PageViewBuffer(
        db.engine,
        flush_every=int(app.config.get("PAGEVIEW_FLUSH_EVERY", FLUSH_EVERY)),
        flush_seconds=float(app.config.get("PAGEVIEW_FLUSH_SECONDS", FLUSH_SECONDS)),
        own_campaigns=(lambda: [c.slug for c in campaigns.held().all()]) if campaigns is not None else (),
    )
    app.after_request(_after_request)


atexit.register(flush_all)
