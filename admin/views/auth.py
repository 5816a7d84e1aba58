"""Sign in and sign out, and the limits that keep password guessing slow without locking staff out."""

from __future__ import annotations

import hashlib
import secrets

from flask import Response, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from itsdangerous import BadData, URLSafeTimedSerializer

from admin.blueprint import bp, safe_next
from admin.forms import ActionForm, LoginForm
from admin.models import User
from admin.users import authenticate
from core.db import db
from core.extensions import client_ip, limiter

# A browser that has signed in to an account before carries a signed cookie naming it ("a known browser").
DEVICE_COOKIE = "admin_device"
DEVICE_MAX_AGE = 180 * 24 * 3600


def _login_limit() -> str:
    return current_app.config.get("LOGIN_RATE_LIMIT", "10/minute;50/hour")


def _account_limit() -> str:
    return current_app.config.get("LOGIN_ACCOUNT_RATE_LIMIT", "30/hour")


def _account() -> str:
    """The account being tried, hashed: addresses typed by strangers stay out of the limit store."""
    email = (request.form.get("email") or "").strip().lower()[:320]
    return hashlib.sha256(email.encode("utf-8", "replace")).hexdigest()[:32]


def _devices() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="admin-device")


def _known_device() -> str | None:
    """This browser's id when it has signed in to the account being tried before, else None."""
    if "login_device" not in g:
        g.login_device = None
        try:
            data = _devices().loads(request.cookies.get(DEVICE_COOKIE, ""), max_age=DEVICE_MAX_AGE)
        except BadData:
            data = None
        if isinstance(data, dict) and data.get("a") == _account() and isinstance(data.get("d"), str):
            g.login_device = data["d"]
    return g.login_device


def _from_known_device() -> bool:
    return _known_device() is not None


def _account_and_client() -> str:
    """Failures count per account and per client: the known browser, or else the IP address."""
    device = _known_device()
    return f"{_account()}:device:{device}" if device else f"{_account()}:ip:{client_ip()}"


def _failed(response: Response) -> bool:
    return response.status_code == 401


# Three limits (see README, "Privacy and security"):
# - per IP, every attempt: one address cannot try many passwords or accounts (a known browser is exempt);
# - per account and client, failures only: guessing one account from one place stops, and failures from
#   elsewhere never count against the owner's own browser or network;
# - per account, failures from unknown browsers only: guessing one account from many IPs stays slow, while
#   a browser that has signed in to it before is never locked out by them.
@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    _login_limit, key_func=client_ip, methods=["POST"], scope="admin-login-ip", exempt_when=_from_known_device
)
@limiter.limit(
    _login_limit, key_func=_account_and_client, methods=["POST"], scope="admin-login-failures", deduct_when=_failed
)
@limiter.limit(
    _account_limit,
    key_func=_account,
    methods=["POST"],
    scope="admin-login-account",
    deduct_when=_failed,
    exempt_when=_from_known_device,
)
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
            return _remember_device(redirect(target))
        form.password.errors.append("The email or password is not right.")
        current_app.logger.info("admin login failed from %s", client_ip())
        return render_template("admin/login.html", form=form, next=request.values.get("next", "")), 401
    status = 400 if request.method == "POST" else 200
    return render_template("admin/login.html", form=form, next=request.values.get("next", "")), status


def _remember_device(response: Response) -> Response:
    """Mark this browser as known for the account just signed in to (it keeps its id if it had one)."""
    device = _known_device() or secrets.token_urlsafe(16)
    response.set_cookie(
        DEVICE_COOKIE,
        _devices().dumps({"a": _account(), "d": device}),
        max_age=DEVICE_MAX_AGE,
        path=url_for("admin.login"),
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        httponly=True,
        samesite="Lax",
    )
    return response


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
