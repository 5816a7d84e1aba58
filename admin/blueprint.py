"""The admin blueprint, its login guard, role checks and security headers."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, redirect, request, url_for
from flask_login import current_user

bp = Blueprint("admin", __name__, url_prefix="/admin")

# Endpoints reachable without a session (the login form itself and its assets).
PUBLIC_ENDPOINTS = frozenset({"admin.login"})

# Admin pages load only our own CSS and scripts; previews of emails live in a sandboxed frame of our own.
ADMIN_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
# An email body shown in an iframe: its inline styles may apply, nothing may run or load from elsewhere.
PREVIEW_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox"


def login_redirect() -> Response:
    """Send an anonymous visitor to the login page, remembering where they wanted to go."""
    target = request.full_path if request.method == "GET" else None
    if target and target.endswith("?"):
        target = target[:-1]
    return redirect(url_for("admin.login", next=target) if target else url_for("admin.login"))


def guard_admin_path() -> Response | None:
    """Before every request under /admin: anonymous visitors go to the login page."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return login_redirect()
    return None


@bp.before_request
def _require_login() -> Response | None:
    return guard_admin_path()


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", ADMIN_CSP)
    response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    return response


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only users with the admin role may use this view; others get 403."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return login_redirect()
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def safe_next(target: str | None) -> str:
    """A same-site path under /admin to go to after login; anything else becomes the dashboard."""
    default = url_for("admin.dashboard")
    if not target or "\\" in target or any(ord(c) < 32 for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if not (parts.path == "/admin" or parts.path.startswith("/admin/")):
        return default
    return target


def has_endpoint(endpoint: str) -> bool:
    """Whether some package registered this endpoint (used to link optional screens)."""
    return endpoint in current_app.view_functions


def endpoint_for_path(path: str) -> str | None:
    """The endpoint serving a GET of this exact path, if some package registered one (optional nav links)."""
    for rule in current_app.url_map.iter_rules():
        if rule.rule.rstrip("/") == path.rstrip("/") and "GET" in (rule.methods or ()) and not rule.arguments:
            return rule.endpoint
    return None
