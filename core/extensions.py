"""Flask extensions created unbound here and bound in create_app()."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_login import LoginManager, current_user

from core.signing import CookieSessionInterface, CSRFProtect

# A Redis that drops packets must not hold a signup for the OS's connect timeout (minutes): fail fast, fall back.
REDIS_STORAGE_OPTIONS = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}


def client_ip() -> str:
    """The visitor's address for rate limits; ProxyFix (TRUSTED_PROXIES) makes it the real one."""
    return request.remote_addr or "unknown"


csrf = CSRFProtect()
# Methods no limit here counts (tests/core/test_rate_limit_methods checks every declared limit): all are on POSTs.
UNLIMITED_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class PostLimiter(Limiter):
    """Flask-Limiter, skipped for the methods no limit counts: it resolved the route's and blueprint's limits and
    exemptions on every page view (a fifth of a landing page view's instructions) only to find none."""

    def _check_request_limit(self, callable_name: str | None = None, in_middleware: bool = True) -> None:
        """Flask-Limiter's check (its before_request hook and its decorators' wrapper), for counted methods only,
        and not at all while limits are off (RATELIMIT_ENABLED=0), where it still walked its meta limits and
        exemptions on every signup to count nothing."""
        if request.method in UNLIMITED_METHODS or not self.enabled:
            return
        super()._check_request_limit(callable_name, in_middleware)


# When the shared store (Redis) cannot be reached, limits are counted in each process's memory instead of
# failing the request: an outage of the store must never lose a signup or lock staff out. Flask-Limiter logs
# the switch once ("Rate limit storage unreachable") and switches back when the store answers again.
limiter = PostLimiter(
    key_func=client_ip,
    default_limits=[],
    headers_enabled=True,
    in_memory_fallback_enabled=True,
    swallow_errors=True,
)
login_manager = LoginManager()


def _storage_scheme(app: Flask) -> str:
    return str(app.config.get("RATELIMIT_STORAGE_URI") or "memory://").split(":", 1)[0].split("+", 1)[0]


def limiter_probe() -> dict[str, Any]:
    """/healthz entry: whether the rate-limit store answers; when not, limits are per process until it does."""
    scheme = _storage_scheme(current_app)
    if not limiter.enabled:
        return {"ok": True, "storage": "off"}
    if scheme == "memory" or limiter.storage.check():
        return {"ok": True, "storage": scheme}
    return {
        "ok": False,
        "storage": scheme,
        "note": "unreachable: limits are counted in each process's memory until it answers again",
    }


def _lazy_current_user() -> dict[str, Any]:
    return {"current_user": current_user}


def init_app(app: Flask) -> None:
    """Bind the extensions to the app and report the rate-limit store on /healthz."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    if _storage_scheme(app) in ("redis", "rediss", "valkey", "valkeys"):
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", REDIS_STORAGE_OPTIONS)
    csrf.init_app(app)
    app.session_interface = CookieSessionInterface()
    limiter.init_app(app)
    # The limiter is one object for every app built in this process (the tests build many): a new app's store
    # starts out healthy, whatever an earlier app's store did.
    limiter._storage_dead = False
    # Templates get current_user as Flask-Login's lazy proxy instead of its context processor's eager load: that
    # load ran on every rendered page, and for a visitor whose session holds only a CSRF secret "strong" session
    # protection then rewrote the session and sent an expired remember_token cookie with each public page.
    login_manager.init_app(app, add_context_processor=False)
    app.context_processor(_lazy_current_user)
    login_manager.login_view = "admin.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.session_protection = "strong"
    app.extensions.setdefault("health_checks", {})["rate_limits"] = limiter_probe
