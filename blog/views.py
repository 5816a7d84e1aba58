"""The blog index (newest first, paginated), a page per tag, one page per post and the Atom feed."""

from __future__ import annotations

from datetime import UTC, datetime, time

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for

from public import pageviews
from studio.post_registry import blog, live_since
from studio.posts import Post
from studio.registry import registry

bp = Blueprint("blog", __name__)
DEFAULT_PER_PAGE = 10
FEED_ENTRIES = 20


def _page_number() -> int:
    raw = request.args.get("page", "1")
    if not raw.isdecimal() or len(raw) > 6:
        abort(404)
    return int(raw)


@bp.get("/blog")
def index_redirect() -> Response:
    """Send /blog to /blog/ so the landing-page route never sees 'blog' as a slug."""
    return redirect(url_for("blog.index"), code=308)


@bp.get("/blog/")
def index() -> str:
    """List posts, newest first; ?page=N for older ones, 404 past the last page."""
    number = _page_number()
    per_page = int(current_app.config.get("BLOG_PER_PAGE", DEFAULT_PER_PAGE))
    try:
        posts, pages = blog().page(number, per_page)
    except IndexError:
        abort(404)
    return render_template("blog/index.html", posts=posts, page=number, pages=pages, tags=blog().tags())


@bp.get("/blog/tag/<segment>")
def tag(segment: str) -> str:
    """The posts on one topic, newest first; 404 for a tag no live post carries."""
    current = blog()
    name = current.tags().get(segment)
    if name is None:
        abort(404)
    number = _page_number()
    per_page = int(current_app.config.get("BLOG_PER_PAGE", DEFAULT_PER_PAGE))
    try:
        posts, pages = current.page(number, per_page, current.tagged(segment))
    except IndexError:
        abort(404)
    return render_template("blog/index.html", posts=posts, page=number, pages=pages, tag=name, segment=segment)


@bp.get("/blog/feed.xml")
def feed() -> Response:
    """The newest posts as an Atom feed (feed readers and email tools follow it)."""
    posts = blog().latest(FEED_ENTRIES)
    entries = [(post, updated(post)) for post in posts]
    newest = max((moment for _, moment in entries), default=datetime(2000, 1, 1, tzinfo=UTC))
    body = render_template("blog/feed.xml", entries=entries, updated=newest)
    return Response(body, mimetype="application/atom+xml")


def updated(post: Post) -> datetime:
    """When a post last changed for readers: when its served version went live, else its date."""
    return live_since(post.slug) or datetime.combine(post.date, time(12), tzinfo=UTC)


@bp.get("/blog/<slug>")
def post(slug: str) -> str:
    """One post, ending with a call to book the free consultation."""
    found = blog().get(slug)
    if found is None:
        abort(404)
    campaign = registry().get(found.treatment)
    if campaign is None or not campaign.active:
        campaign = next(iter(registry().active()), None)
    pageviews.record_request(found.path)
    return render_template("blog/post.html", post=found, campaign=campaign)
