"""The blog index (newest first, paginated) and one page per post."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from blog.loader import blog
from public import pageviews
from studio.registry import registry

bp = Blueprint("blog", __name__)
DEFAULT_PER_PAGE = 10


@bp.get("/blog")
def index_redirect() -> Response:
    """Send /blog to /blog/ so the landing-page route never sees 'blog' as a slug."""
    return redirect(url_for("blog.index"), code=308)


@bp.get("/blog/")
def index() -> str:
    """List posts, newest first; ?page=N for older ones, 404 past the last page."""
    raw = request.args.get("page", "1")
    if not raw.isdecimal() or len(raw) > 6:
        abort(404)
    per_page = int(current_app.config.get("BLOG_PER_PAGE", DEFAULT_PER_PAGE))
    try:
        posts, pages = blog().page(int(raw), per_page)
    except IndexError:
        abort(404)
    number = int(raw)
    return render_template("blog/index.html", posts=posts, page=number, pages=pages)


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
