"""Flask extensions created unbound here and bound in create_app()."""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_wtf import CSRFProtect


def client_ip() -> str:
    """The visitor's address for rate limits; ProxyFix (TRUSTED_PROXIES) makes it the real one."""
    return request.remote_addr or "unknown"


csrf = CSRFProtect()
limiter = Limiter(key_func=client_ip, default_limits=[], headers_enabled=True)
login_manager = LoginManager()


def init_app(app: Flask) -> None:
    """Bind the extensions to the app."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "admin.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.session_protection = "strong"
