"""Site-wide pages and behaviour: home, SEO files, errors, security headers, static caching, page views."""

from __future__ import annotations

from flask import Flask
from werkzeug.exceptions import HTTPException

from public import assets, headers, pageviews, seo
from public.views import bp, handle_http_error, handle_unexpected


def init_app(app: Flask) -> None:
    """Register the blueprint, error handlers, template helpers and response hooks."""
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
    seo.init_app(app)
    assets.init_app(app)
    pageviews.init_app(app)
    headers.init_app(app)
