"""Site-wide pages: home, the privacy notice, /healthz, /sitemap.xml, /robots.txt and the error pages."""

from __future__ import annotations

import json
import traceback

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from core.db import check_connection, db
from studio.media import EXTENSIONS, variant
from studio.post_registry import Blog, blog
from studio.registry import registry

bp = Blueprint("public", __name__)

ERROR_TEXT = {
    400: ("Something in the request was not right", "Please go back, check what you entered and try again."),
    403: ("Not allowed", "This link or page is not available to you."),
    404: ("Page not found", "The page you asked for does not exist or has moved."),
    405: ("Not allowed", "This page cannot be used that way."),
    413: ("Too much data", "What you sent was larger than we accept. Please shorten it and try again."),
    429: ("Too many requests", "Please wait a minute before trying again."),
    500: ("Something went wrong on our side", "Please try again in a few minutes."),
}
# Robots stay out of private, one-time and machine-facing paths.
ROBOTS_DISALLOW = ("/admin", "/api", "/unsubscribe", "/confirm", "/webhooks", "/*/thank-you")
HOME_POSTS = 3


def _campaigns() -> list:
    return sorted(registry().active(), key=lambda c: c.name.lower())


def _blog() -> Blog:
    return blog()


@bp.get("/")
def home() -> str:
    """The treatments on offer and the latest posts."""
    posts = _blog().latest(HOME_POSTS)
    return render_template("public/home.html", campaigns=_campaigns(), posts=posts)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Report the database's state (and, once registered, the worker's and the provider's)."""
    checks = {"database": check_connection()}
    for name, probe in current_app.extensions.get("health_checks", {}).items():
        checks[name] = probe()
    ok = all(check.get("ok", True) for check in checks.values())
    return jsonify(status="ok" if ok else "degraded", **checks), 200 if ok else 503


@bp.get("/privacy")
def privacy() -> str:
    """The privacy notice that the consultation form asks visitors to acknowledge."""
    return render_template("public/privacy.html")


@bp.get("/sitemap.xml")
def sitemap() -> Response:
    """Every page a search engine should know: home, each active landing page, the blog and each post."""
    body = render_template("public/sitemap.xml", campaigns=_campaigns(), posts=_blog().posts)
    return Response(body, mimetype="application/xml")


@bp.get("/media/<key>-<int:width>.<ext>")
def media(key: str, width: int, ext: str) -> Response:
    """One stored width of an uploaded image: cached for a year (a changed picture gets a new key), with an ETag."""
    found = variant(db.session, key, width, ext) if ext in EXTENSIONS and len(key) <= 32 else None
    if found is None:
        abort(404)
    response = Response(found.data, mimetype=found.content_type)
    response.set_etag(found.etag)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response.make_conditional(request)


@bp.get("/robots.txt")
def robots() -> Response:
    """Keep crawlers out of the admin and one-time links; point them at the sitemap."""
    lines = ["User-agent: *", *(f"Disallow: {path}" for path in ROBOTS_DISALLOW)]
    lines += ["", f"Sitemap: {current_app.config['SITE_URL']}/sitemap.xml", ""]
    return Response("\n".join(lines), mimetype="text/plain")


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/webhooks/")) or request.accept_mimetypes.best == "application/json"


def handle_http_error(exc: HTTPException) -> tuple[Response | str, int]:
    """Render errors as pages for people and as JSON for API clients."""
    code = exc.code or 500
    if code < 400:  # redirects raised as exceptions (e.g. RequestRedirect) pass through untouched
        return exc.get_response(), code
    title, message = ERROR_TEXT.get(code, (exc.name, exc.description or ""))
    # Keep headers the error defines (Allow on 405, Retry-After on 429) but not its HTML content type.
    extra = {k: v for k, v in exc.get_headers() if k.lower() in ("allow", "retry-after")}
    if _wants_json():
        response = Response(json.dumps({"error": title, "status": code}), mimetype="application/json")
    elif code == 404:
        posts = _blog().latest(HOME_POSTS)
        page = render_template("errors/404.html", title=title, message=message, campaigns=_campaigns(), posts=posts)
        response = Response(page, mimetype="text/html")
    else:
        page = render_template("errors/error.html", title=title, message=message, code=code)
        response = Response(page, mimetype="text/html")
    response.headers.update(extra)
    return response, code


def handle_unexpected(exc: Exception) -> tuple[Response | str, int]:
    """Log where it failed without request data or the exception's text (either may hold health details)."""
    # Frames only (file, line, code): an exception's message can quote the values a visitor sent.
    where = "".join(traceback.format_tb(exc.__traceback__)).rstrip()
    current_app.logger.error("unhandled %s on %s %s\n%s", type(exc).__name__, request.method, request.path, where)
    title, message = ERROR_TEXT[500]
    if _wants_json():
        return Response(json.dumps({"error": title, "status": 500}), mimetype="application/json"), 500
    return render_template("errors/error.html", title=title, message=message, code=500), 500
