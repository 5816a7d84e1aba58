"""Sign in and sign out."""

from __future__ import annotations

from flask import Response, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from admin.blueprint import bp, safe_next
from admin.forms import ActionForm, LoginForm
from admin.models import User
from admin.users import authenticate
from core.db import db
from core.extensions import client_ip, limiter


def _login_limit() -> str:
    return current_app.config.get("LOGIN_RATE_LIMIT", "10/minute;50/hour")


def _email_key() -> str:
    """Rate-limit key for the address being tried, so one account cannot be guessed at from many IPs."""
    email = (request.form.get("email") or "").strip().lower()[:320]
    return f"login-email:{email}"


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, key_func=client_ip, methods=["POST"], scope="admin-login-ip")
@limiter.limit(_login_limit, key_func=_email_key, methods=["POST"], scope="admin-login-email")
def login() -> Response | tuple[str, int] | str:
    """The sign-in form."""
    target = safe_next(request.values.get("next"))
    if current_user.is_authenticated:
        return redirect(target)
    form = LoginForm()
    if form.validate_on_submit():
        with db.write_transaction() as s:
            user = authenticate(s, form.email.data or "", form.password.data or "")
        if user is not None:
            # A fresh session on sign-in so a planted session id cannot be promoted (session fixation).
            session.clear()
            login_user(user)
            current_app.logger.info("admin login user=%s", user.id)
            return redirect(target)
        form.password.errors.append("The email or password is not right.")
        current_app.logger.info("admin login failed from %s", client_ip())
        return render_template("admin/login.html", form=form, next=request.values.get("next", "")), 401
    status = 400 if request.method == "POST" else 200
    return render_template("admin/login.html", form=form, next=request.values.get("next", "")), status


@bp.post("/logout")
def logout() -> Response:
    """Sign out on every device (POST with a CSRF token, so a link on another site cannot sign you out)."""
    form = ActionForm()
    if form.validate_on_submit():
        if current_user.is_authenticated:
            # A copied or left-behind cookie must not outlive signing out: every session of this user ends.
            with db.write_transaction() as s:
                user = s.get(User, current_user.id)
                if user is not None:
                    user.end_sessions()
        logout_user()
        session.clear()
        flash("You are signed out.", "info")
    return redirect(url_for("admin.login"))
