"""The clinic's machine-to-machine API: bookings from the booking system, and its OpenAPI document."""

from __future__ import annotations

from flask import Flask

from api.views import bp
from core.extensions import csrf


def init_app(app: Flask) -> None:
    """Register the /api blueprint (bearer-token auth, so no CSRF)."""
    csrf.exempt(bp)
    app.register_blueprint(bp)
