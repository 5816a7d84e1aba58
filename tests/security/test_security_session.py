"""The staff session cookie's flags, and the login rate limit against password guessing."""

from __future__ import annotations

import pytest

from app import create_app
from config import Config
from tests.support.database import fresh_app
from tests.support.factories import PASSWORD, make_user
from tests.support.factories import STAFF_EMAIL as EMAIL
from tests.support.forms import post_form
from tests.support.staff import login

HTTPS_SITE = "https://clinic.example"


def _cookie_attributes(response, name: str) -> dict[str, str | bool]:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            attributes: dict[str, str | bool] = {}
            for part in header.split(";")[1:]:
                key, _, value = part.strip().partition("=")
                attributes[key.lower()] = value or True
            return attributes
    raise AssertionError(f"no {name} cookie set: {response.headers.getlist('Set-Cookie')}")


def test_session_cookie_after_login_over_http(app, client):
    make_user(app)
    response = login(client)
    assert response.status_code == 302, response.status_code
    flags = _cookie_attributes(response, app.config.get("SESSION_COOKIE_NAME", "session"))
    assert flags.get("httponly") is True
    assert str(flags.get("samesite")).lower() == "lax"
    assert "secure" not in flags, "a Secure cookie over plain HTTP would lock staff out in development"


def test_session_cookie_is_secure_when_the_site_is_https(app, make_config):
    derived = Config({"SITE_URL": HTTPS_SITE})
    assert derived.SESSION_COOKIE_SECURE is True, "SITE_URL=https://... must make the session cookie Secure"
    assert derived.REMEMBER_COOKIE_SECURE is True
    secure_app = create_app(
        make_config(
            SITE_URL=HTTPS_SITE,
            SESSION_COOKIE_SECURE=derived.SESSION_COOKIE_SECURE,
            REMEMBER_COOKIE_SECURE=derived.REMEMBER_COOKIE_SECURE,
        )
    )
    make_user(secure_app)
    client = secure_app.test_client()
    response = login(client, base_url=HTTPS_SITE)
    assert response.status_code == 302, response.status_code
    flags = _cookie_attributes(response, secure_app.config.get("SESSION_COOKIE_NAME", "session"))
    assert flags.get("secure") is True
    assert flags.get("httponly") is True
    assert str(flags.get("samesite")).lower() == "lax"
    assert "Strict-Transport-Security" in response.headers


def test_login_gets_a_fresh_session(app, client):
    """A session id planted before login is not the one that is signed in (no fixation)."""
    make_user(app)
    client.get("/admin/login")
    before = client.get_cookie("session")
    login(client)
    after = client.get_cookie("session")
    assert before is not None
    assert after is not None
    assert after.value != before.value
    assert client.get("/admin/").status_code == 200


def _failed_logins(client, count: int, *, email: str = EMAIL, ip: str = "203.0.113.7") -> list[int]:
    page = client.get("/admin/login", environ_base={"REMOTE_ADDR": ip})
    token = post_form(page.get_data(as_text=True)).hidden()["csrf_token"]
    return [
        client.post(
            "/admin/login",
            data={"csrf_token": token, "email": email, "password": f"wrong guess {n}"},
            environ_base={"REMOTE_ADDR": ip},
        ).status_code
        for n in range(count)
    ]


def _limit(app) -> int:
    return int(app.config["LOGIN_RATE_LIMIT"].split(";")[0].split("/")[0])


def test_login_attempts_are_rate_limited_per_ip(app, client):
    make_user(app)
    limit = _limit(app)
    statuses = _failed_logins(client, limit)
    assert statuses == [401] * limit, statuses
    assert _failed_logins(client, 1, email="other@example.com") == [429], "the limit counts per IP, any email"
    # Even the right password waits: a guesser must not learn that it found it.
    page = client.get("/admin/login", environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert page.status_code == 200
    token = post_form(page.get_data(as_text=True)).hidden()["csrf_token"]
    right = client.post(
        "/admin/login",
        data={"csrf_token": token, "email": EMAIL, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    assert right.status_code == 429
    assert client.get("/admin/", environ_base={"REMOTE_ADDR": "203.0.113.7"}).status_code in (302, 303)


def _sign_in(client, ip: str, password: str = PASSWORD) -> int:
    page = client.get("/admin/login", environ_base={"REMOTE_ADDR": ip})
    token = post_form(page.get_data(as_text=True)).hidden()["csrf_token"]
    return client.post(
        "/admin/login",
        data={"csrf_token": token, "email": EMAIL, "password": password},
        environ_base={"REMOTE_ADDR": ip},
    ).status_code


def test_failures_from_other_ips_do_not_lock_the_staff_member_out(app):
    """Ten wrong passwords for a staff address from other IPs: the real user still signs in from a fresh one."""
    make_user(app)
    statuses: list[int] = []
    for n in range(10):
        statuses += _failed_logins(app.test_client(), 1, ip=f"198.51.100.{n + 1}")
    assert statuses == [401] * 10, statuses
    assert _sign_in(app.test_client(), "192.0.2.44") == 302


@pytest.fixture
def six_per_account(make_config):
    """The app with a per-account limit of 6 failed sign-ins an hour from unknown browsers."""
    yield from fresh_app(make_config(LOGIN_ACCOUNT_RATE_LIMIT="6/hour"))


def test_guessing_one_account_from_many_ips_is_limited_but_its_owners_browser_signs_in(six_per_account):
    """Past the per-account limit new browsers wait (right password or not); the owner's known browser does not."""
    app = six_per_account
    make_user(app)
    own_browser = app.test_client()
    assert _sign_in(own_browser, "192.0.2.10") == 302
    own_browser.delete_cookie("session")  # signed out; the browser is still known
    statuses: list[int] = []
    for n in range(6):
        statuses += _failed_logins(app.test_client(), 1, ip=f"198.51.100.{n + 1}")
    assert statuses == [401] * 6, statuses
    assert _failed_logins(app.test_client(), 1, ip="198.51.100.99") == [429], "distributed guessing is limited"
    assert _sign_in(app.test_client(), "198.51.100.98") == 429, "a guesser must not learn it found the password"
    # The owner's browser, even from a new network, is not blocked by the others' failures.
    assert _sign_in(own_browser, "203.0.113.200") == 302


def test_a_known_browser_still_has_its_own_failure_limit(app):
    make_user(app)
    browser = app.test_client()
    assert _sign_in(browser, "192.0.2.10") == 302
    browser.delete_cookie("session")
    limit = _limit(app)
    ips = [f"203.0.113.{n}" for n in range(1, limit + 2)]  # a new IP each time: only the browser's own count holds
    statuses = [_sign_in(browser, ip, password=f"wrong guess {n}") for n, ip in enumerate(ips)]
    assert statuses == [401] * limit + [429], statuses


def test_a_visitors_public_pages_set_no_cookie_after_the_first(app, client):
    """Only the page that puts the CSRF secret in the session sets a cookie; the thank-you page, the blog and a
    404 neither rewrite the session nor expire a remember_token the visitor never had (templates read
    current_user lazily, and public pages never read it)."""
    first = client.get("/stem-cell-therapy")
    assert [h.split("=", 1)[0] for h in first.headers.getlist("Set-Cookie")] == ["session"]
    for path in ("/stem-cell-therapy/thank-you", "/blog/", "/no-such-page", "/stem-cell-therapy"):
        answer = client.get(path)
        assert answer.headers.getlist("Set-Cookie") == [], (path, answer.headers.getlist("Set-Cookie"))


def test_signed_in_staff_still_see_their_name_and_a_stolen_cookie_still_fails(app, client):
    """current_user in the admin's templates is the same user once loaded lazily; "strong" protection still
    refuses the session from another browser."""
    make_user(app)
    assert login(client).status_code == 302
    page = client.get("/admin/")
    assert page.status_code == 200
    assert EMAIL in page.get_data(as_text=True)
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    stolen = thief.get("/admin/", headers={"User-Agent": "another browser"})
    assert stolen.status_code in (302, 401)
