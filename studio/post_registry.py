"""The posts the site serves: each process holds the live and scheduled versions of one content revision.

Like the campaigns (studio.registry), a process compares the content revision with the database's at most every
CONTENT_REFRESH_SECONDS. A scheduled version is held before its time and served from the moment the clock passes
it, so a post goes live on its own, in every process, without anyone publishing again.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask, current_app
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from core.clock import now
from studio.post_services import live_entries, media_index, served_post
from studio.posts import Post, newest_first, tag_slug
from studio.revision import RevisionWatch


class Blog:
    """The posts live at one moment, newest first."""

    def __init__(self, posts: list[Post]) -> None:
        self.posts = newest_first(posts)
        self._by_slug = {post.slug: post for post in self.posts}

    def get(self, slug: str) -> Post | None:
        """The post with this slug, if any."""
        return self._by_slug.get(slug)

    def latest(self, count: int) -> list[Post]:
        """The newest `count` posts."""
        return self.posts[:count]

    def page(self, number: int, per_page: int, posts: list[Post] | None = None) -> tuple[list[Post], int]:
        """Posts on page `number` (from 1) and the number of pages (at least 1)."""
        posts = self.posts if posts is None else posts
        pages = max(1, -(-len(posts) // per_page))
        if number < 1 or number > pages:
            raise IndexError(number)
        start = (number - 1) * per_page
        return posts[start : start + per_page], pages

    def tags(self) -> dict[str, str]:
        """Every tag in use by its URL segment (the first spelling met wins)."""
        out: dict[str, str] = {}
        for post in self.posts:
            for tag in post.tags:
                out.setdefault(tag_slug(tag), tag)
        return out

    def tagged(self, segment: str) -> list[Post]:
        """The posts carrying the tag with this URL segment, newest first."""
        return [post for post in self.posts if any(tag_slug(tag) == segment for tag in post.tags)]


class Entry:
    """One post as held: what is live and since when, and what replaces it at a set time."""

    def __init__(self, live: Post | None, since: datetime | None, scheduled: Post | None, at: datetime | None) -> None:
        self.live, self.since, self.scheduled, self.at = live, since, scheduled, at

    def at_moment(self, moment: datetime) -> tuple[Post | None, datetime | None]:
        """The post served at this moment and since when."""
        if self.scheduled is not None and self.at is not None and self.at <= moment:
            return self.scheduled, self.at
        return self.live, self.since


class PostRegistry(RevisionWatch):
    """One process's copy of the posts, refreshed when the content revision moves or a scheduled time passes."""

    what = "posts"

    def __init__(self, app: Flask, refresh_seconds: float) -> None:
        super().__init__(app, refresh_seconds)
        self._entries: list[Entry] = []
        self._blog = Blog([])
        self._since: dict[str, datetime] = {}
        self._next_change: datetime | None = None

    def current(self) -> Blog:
        """The posts live now."""
        self.check()
        moment = now()
        if self._next_change is not None and moment >= self._next_change:
            self._rebuild(moment)
        return self._blog

    def live_since(self, slug: str) -> datetime | None:
        """When the version served now went live."""
        return self._since.get(slug)

    def load(self, conn: Connection) -> list[Entry]:
        """Every post's live version and the one scheduled to replace it."""
        with Session(bind=conn) as session:
            entries = []
            media = media_index(session)
            for record, live, scheduled in live_entries(session):
                live_post = served_post(live.document, media) if live else None
                scheduled_post = served_post(scheduled.document, media) if scheduled else None
                entries.append(Entry(live_post, record.live_since, scheduled_post, record.scheduled_at))
            return entries

    def adopt(self, loaded: list[Entry]) -> None:
        """Serve these posts from now on."""
        self._entries = loaded
        self._rebuild(now())

    def _rebuild(self, moment: datetime) -> None:
        posts, since = [], {}
        upcoming = [entry.at for entry in self._entries if entry.at is not None and entry.at > moment]
        for entry in self._entries:
            post, started = entry.at_moment(moment)
            if post is not None:
                posts.append(post)
                if started is not None:
                    since[post.slug] = started
        self._blog, self._since = Blog(posts), since
        self._next_change = min(upcoming) if upcoming else None


def init_app(app: Flask) -> None:
    """Hold this process's posts (loaded on first use, after the database is ready)."""
    app.extensions["posts"] = PostRegistry(app, float(app.config.get("CONTENT_REFRESH_SECONDS", 2)))


def blog() -> Blog:
    """The current app's live posts."""
    held = current_app.extensions["posts"]
    return held.current() if isinstance(held, PostRegistry) else held


def live_since(slug: str) -> datetime | None:
    """When the served version of a post went live (None when unknown)."""
    held = current_app.extensions["posts"]
    return held.live_since(slug) if isinstance(held, PostRegistry) else None
