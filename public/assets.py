"""Static files with long-lived caching: URLs carry a content hash, so a changed file gets a new URL."""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Flask, current_app, request, url_for
from werkzeug.wrappers import Response

ONE_YEAR = 365 * 24 * 3600


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def static_url(filename: str) -> str:
    """URL of a static file with ?v=<content hash>; the hash is computed once per file and process."""
    hashes: dict[str, str] = current_app.extensions.setdefault("static_hashes", {})
    version = hashes.get(filename)
    if version is None:
        path = Path(current_app.static_folder or "static") / filename
        version = _digest(path) if path.is_file() else "missing"
        if not current_app.debug:
            hashes[filename] = version
    return url_for("static", filename=filename, v=version)


def _cache_static(response: Response) -> Response:
    if request.endpoint == "static" and response.status_code in (200, 304):
        if request.args.get("v"):
            # The URL changes whenever the file does, so browsers may keep it for a year without asking.
            response.headers["Cache-Control"] = f"public, max-age={ONE_YEAR}, immutable"
        else:
            response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def init_app(app: Flask) -> None:
    """Expose static_url to templates and set cache headers on static responses."""
    app.jinja_env.globals["static_url"] = static_url
    app.after_request(_cache_static)
