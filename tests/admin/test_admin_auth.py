"""Sign-in, the login guard on every /admin URL, roles, the rate limit and the `flask users` commands."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from admin.models import User
from core.db import db
from nurture.models import CampaignState
from tests.support.factories import PASSWORD
from tests.support.forms import csrf_from
from tests.support.staff import login

DUMMY = {"int": "1", "default": "x", "string": "x", "path": "x"}


def _fill(rule) -> str:
    """The rule's URL with a dummy value for each parameter."""
    url = rule.rule
    for match in re.finditer(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", rule.rule):
        url = url.replace(match.group(0), DUMMY.get(match.group(1) or "default", "x"))
    return url


def test_every_admin_url_sends_anonymous_visitors_to_login(app, client):
    token = csrf_from(client.get("/admin/login").get_data(as_text=True))
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/admin") and r.endpoint != "admin.login"]
    assert len(rules) >= 20  # the walk found the screens (a broken walk must not pass silently)
    checked = 0
    for rule in rules:
        url = _fill(rule)
        for method in sorted(rule.methods & {"GET", "POST"}):
            if method == "GET":
                response = client.get(url)
            else:
                response = client.post(url, data={"csrf_token": token, "confirm": "ERASE", "status": "booked"})
            assert response.status_code == 302, f"{method} {url} answered {response.status_code}"
            assert response.headers["Location"].startswith("/admin/login"), f"{method} {url}"
            checked += 1
    assert checked >= len(rules)


def test_login_then_dashboard_and_next_is_kept(client, make_user):
    email = make_user()
    response = client.get("/admin/leads?status=new")
    assert response.headers["Location"] == "/admin/login?next=/admin/leads?status%3Dnew"
    page = client.get(response.headers["Location"])
    token = csrf_from(page.get_data(as_text=True))
    response = client.post(
        "/admin/login",
        data={"csrf_token": token, "email": email, "password": PASSWORD, "next": "/admin/leads?status=new"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/leads?status=new"
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/admin/", "/\\evil.example", "javascript:alert(1)", "/blog/"]
)
def test_next_never_leaves_the_admin(client, make_user, target):
    email = make_user()
    token = csrf_from(client.get("/admin/login").get_data(as_text=True))
    response = client.post(
        "/admin/login", data={"csrf_token": token, "email": email, "password": PASSWORD, "next": target}
    )
    assert response.headers["Location"] == "/admin/"


def test_wrong_password_is_refused_without_saying_which_part(client, make_user):
    email = make_user()
    response = login(client, email, "wrong password, long enough")
    assert response.status_code == 401
    assert "The email or password is not right." in response.get_data(as_text=True)
    assert login(client, "nobody@example.com").status_code == 401
    assert client.get("/admin/").status_code == 302


def test_deactivated_user_cannot_sign_in(app, client, make_user):
    email = make_user()
    with app.app_context(), db.write_transaction() as s:
        s.scalars(select(User)).one().active = False
    assert login(client, email).status_code == 401


def test_session_cookie_is_httponly_and_lax(client, make_user):
    response = login(client, make_user())
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_session_cookie_is_secure_over_https(app, make_config):
    from app import create_app

    https_app = create_app(make_config(SESSION_COOKIE_SECURE=True))
    assert https_app.config["SESSION_COOKIE_SECURE"] is True


def test_logout_needs_a_post_with_csrf(staff):
    assert staff.client.get("/admin/logout").status_code == 405
    assert staff.client.post("/admin/logout").status_code == 400  # no CSRF token: still signed in
    assert staff.client.get("/admin/").status_code == 200
    response = staff.post("/admin/logout")
    assert response.headers["Location"] == "/admin/login"
    assert staff.client.get("/admin/").status_code == 302


def test_login_rate_limit_per_ip_and_per_account_and_ip(make_config, make_user):
    from app import create_app
    from core.extensions import limiter

    limited = create_app(make_config(LOGIN_RATE_LIMIT="3/minute"))
    with limited.app_context():
        limiter.reset()
    client = limited.test_client()
    for _ in range(3):
        assert login(client, "someone@example.com", "wrong password, long enough").status_code == 401
    assert login(client, "someone@example.com", "wrong password, long enough").status_code == 429
    # Another address from the same IP: the per-IP limit holds.
    assert login(client, "other@example.com", "wrong password, long enough").status_code == 429
    # The same address from another IP: failures elsewhere do not lock its owner out.
    other_ip = limited.test_client()
    page = other_ip.get("/admin/login", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    response = other_ip.post(
        "/admin/login",
        data={
            "csrf_token": csrf_from(page.get_data(as_text=True)),
            "email": "someone@example.com",
            "password": "x" * 12,
        },
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert response.status_code == 401


def test_marketer_cannot_erase_or_manage_users(marketer, make_lead, app):
    lead_id = make_lead()
    assert marketer.get(f"/admin/leads/{lead_id}/erase").status_code == 403
    assert marketer.post(f"/admin/leads/{lead_id}/erase", {"confirm": "ERASE"}).status_code == 403
    assert marketer.get("/admin/users").status_code == 403
    assert marketer.post("/admin/users", {"email": "x@example.com", "role": "admin"}).status_code == 403
    page = marketer.get(f"/admin/leads/{lead_id}").get_data(as_text=True)
    assert "Erase this lead" not in page
    from leads.models import Lead

    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert lead.email == "dana@example.com"
        assert lead.erased_at is None


def test_admin_adds_a_user_who_can_sign_in(staff, client):
    response = staff.post(
        "/admin/users",
        {
            "email": "new@nexgenesis.example",
            "role": "marketer",
            "password": "a long password!",
            "password2": "a long password!",
        },
    )
    assert response.status_code == 302
    staff.post("/admin/logout")
    assert login(client, "new@nexgenesis.example", "a long password!").status_code == 302


def test_users_create_list_and_set_password(runner, app, client):
    result = runner.invoke(
        args=["users", "create", "Ops@Clinic.example", "--role", "admin", "--password-stdin"],
        input="twelve chars long\n",
    )
    assert result.exit_code == 0, result.output
    assert "created admin ops@clinic.example" in result.output
    short = runner.invoke(args=["users", "create", "b@clinic.example", "--password-stdin"], input="short\n")
    assert short.exit_code != 0
    assert "at least 12 characters" in short.output
    duplicate = runner.invoke(
        args=["users", "create", "ops@clinic.example", "--password-stdin"], input="twelve chars long\n"
    )
    assert duplicate.exit_code != 0
    assert "already exists" in duplicate.output
    prompted = runner.invoke(args=["users", "create", "c@clinic.example"], input="another long one\nanother long one\n")
    assert prompted.exit_code == 0, prompted.output
    listing = runner.invoke(args=["users", "list"])
    assert "ops@clinic.example\tadmin\tactive" in listing.output
    assert "c@clinic.example\tmarketer\tactive" in listing.output
    changed = runner.invoke(
        args=["users", "set-password", "ops@clinic.example", "--password-stdin"], input="brand new password\n"
    )
    assert changed.exit_code == 0, changed.output
    with app.app_context():
        stored = db.session.scalars(select(User).where(User.email == "ops@clinic.example")).one().password_hash
    assert stored.startswith("$argon2id$")
    assert login(client, "ops@clinic.example", "brand new password").status_code == 302


def test_demo_setup_creates_one_admin_once(runner, app, client):
    first = runner.invoke(args=["demo", "setup"])
    assert first.exit_code == 0, first.output
    password = re.search(r"password:\s+(\S+)", first.output).group(1)
    assert "admin@nexgenesis.example" in first.output
    assert "shown only this once" in first.output
    second = runner.invoke(args=["demo", "setup"])
    assert password not in second.output
    assert "password:" not in second.output
    # A second `make run` says how to get in.
    assert "flask users set-password admin@nexgenesis.example" in second.output
    with app.app_context():
        assert db.session.scalar(select(User.role)) == "admin"
        assert len(db.session.scalars(select(User)).all()) == 1
        slugs = set(db.session.scalars(select(CampaignState.slug)))
    assert "stem-cell-therapy" in slugs
    assert login(client, "admin@nexgenesis.example", password).status_code == 302


def _copy_of(app, client):
    """A second browser holding a copy of `client`'s session cookie (a stolen or left-behind cookie)."""
    copy = app.test_client()
    copy.set_cookie("session", client.get_cookie("session").value)
    return copy


def _remember_cookie_of(app, email):
    """The remember-me cookie Flask-Login would have set for this user at this moment."""
    from flask_login.utils import encode_cookie

    with app.test_request_context():
        user = db.session.scalars(select(User).where(User.email == email)).one()
        return encode_cookie(str(user.get_id()))


def test_logout_ends_every_session_of_the_user_including_remember_me(app, staff):
    copied = _copy_of(app, staff.client)
    other_device = app.test_client()
    assert login(other_device, staff.email).status_code == 302
    remembered = app.test_client()
    remembered.set_cookie("remember_token", _remember_cookie_of(app, staff.email))
    for browser in (copied, other_device, remembered):
        assert browser.get("/admin/leads").status_code == 200
    assert staff.post("/admin/logout").headers["Location"] == "/admin/login"
    for browser in (copied, other_device, remembered):
        response = browser.get("/admin/leads")
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/admin/login")


def test_a_new_password_ends_the_users_sessions_on_every_device(app, client, staff, make_user):
    email = make_user("mia@nexgenesis.example", role="marketer")
    laptop, phone = app.test_client(), app.test_client()
    assert login(laptop, email).status_code == 302
    assert login(phone, email).status_code == 302
    remembered = app.test_client()
    remembered.set_cookie("remember_token", _remember_cookie_of(app, email))
    copied = _copy_of(app, laptop)
    with app.app_context():
        user_id = db.session.scalars(select(User.id).where(User.email == email)).one()
    staff.get(f"/admin/users/{user_id}/password")
    changed = staff.post(
        f"/admin/users/{user_id}/password", {"password": "a brand new password", "password2": "a brand new password"}
    )
    assert changed.status_code == 302
    for browser in (laptop, phone, remembered, copied):
        assert browser.get("/admin/leads").status_code == 302
    assert login(app.test_client(), email, "a brand new password").status_code == 302
    assert staff.get("/admin/leads").status_code == 200  # the admin who changed it stays signed in


def test_changing_your_own_password_keeps_this_session_and_ends_the_others(app, staff):
    copied = _copy_of(app, staff.client)
    with app.app_context():
        user_id = db.session.scalars(select(User.id).where(User.email == staff.email)).one()
    staff.get(f"/admin/users/{user_id}/password")
    changed = staff.post(
        f"/admin/users/{user_id}/password", {"password": "my new long password", "password2": "my new long password"}
    )
    assert changed.status_code == 302
    assert copied.get("/admin/leads").status_code == 302
    assert staff.get("/admin/leads").status_code == 200


def test_set_password_from_the_command_line_ends_sessions(app, runner, staff):
    copied = _copy_of(app, staff.client)
    result = runner.invoke(
        args=["users", "set-password", staff.email, "--password-stdin"], input="brand new password\n"
    )
    assert result.exit_code == 0, result.output
    assert copied.get("/admin/leads").status_code == 302
    assert staff.client.get("/admin/leads").status_code == 302


def test_deactivation_ends_sessions_for_good(app, staff, make_user):
    email = make_user("mia@nexgenesis.example", role="marketer")
    browser = app.test_client()
    assert login(browser, email).status_code == 302
    with app.app_context():
        user_id = db.session.scalars(select(User.id).where(User.email == email)).one()
    staff.post(f"/admin/users/{user_id}/active")  # deactivated
    staff.post(f"/admin/users/{user_id}/active")  # reactivated: the old session stays dead
    assert browser.get("/admin/leads").status_code == 302
