"""The marketing team's workspace under /admin."""

from __future__ import annotations

import hmac

from flask import Flask, render_template, request
from werkzeug.wrappers import Response

from admin import cli, export, search, snapshots, views  # noqa: F401 - importing the views registers their routes
from admin.blueprint import PUBLIC_ENDPOINTS, bp, endpoint_for_path, guard_admin_path, has_endpoint
from admin.composers import compose_test_delivery
from admin.models import User
from core.db import db
from core.extensions import login_manager
from leads.cli import leads_cli
from mailer.base import register_composer
from nurture import register_worker_job


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """Flask-Login's loader: the active user whose id and current session token the cookie names, or None."""
    user_id, _, token = session_id.partition(":")
    if not (user_id.isascii() and user_id.isdecimal() and len(user_id) <= 18 and token):
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or not hmac.compare_digest(token.encode(), (user.session_token or "").encode()):
        return None
    return user


def _holds_nul() -> bool:
    """Whether the path (a campaign slug, say) or a query or form name or value holds a NUL character."""
    if "\x00" in request.path:
        return True
    pairs = [*request.args.items(multi=True), *request.form.items(multi=True)]
    return any("\x00" in name or "\x00" in value for name, value in pairs)


def init_app(app: Flask) -> None:
    """Register the admin blueprint, the `flask users`, `flask demo` and `flask dashboard` commands, the test-send
    composer and the worker's jobs (the dashboard's snapshots, the search index of new leads)."""
    app.register_blueprint(bp)
    app.cli.add_command(cli.users_cli)
    app.cli.add_command(cli.demo_cli)
    app.cli.add_command(cli.dashboard_cli)
    export.register(leads_cli)
    register_composer(app, "test", compose_test_delivery)
    register_worker_job(app, "dashboard-snapshots", snapshots.CHECK_SECONDS, snapshots.refresh_due)
    register_worker_job(app, "search-index", search.INDEX_SECONDS, search.index_due)

    @app.before_request
    def _admin_paths() -> Response | None:
        # One hook, one look at the path: every public page passes through here too.
        path = request.path
        if not path.startswith("/admin"):
            return None
        # PostgreSQL refuses NUL in text: a pasted value holding one must be a 400, never a failed query.
        if path.startswith("/admin/") and request.endpoint not in PUBLIC_ENDPOINTS and _holds_nul():
            message = "A value you sent holds a NUL character (often from pasted text). Remove it and try again."
            return Response(render_template("errors/error.html", title="Bad request", message=message, code=400), 400)
        # Screens other packages mount under /admin (e.g. webhooks) need a login too.
        if request.blueprint != "admin" and (path == "/admin" or path.startswith("/admin/")):
            return guard_admin_path()
        return None

    app.jinja_env.globals["admin_has_endpoint"] = has_endpoint
    app.jinja_env.globals["admin_endpoint_for_path"] = endpoint_for_path
