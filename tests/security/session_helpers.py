"""Staff accounts and sign-in through the real login form, for tests that need a session."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.security.webform import post_form

EMAIL = "staff@example.com"
PASSWORD = "correct horse battery staple"


def make_user(app: Flask, email: str = EMAIL, password: str = PASSWORD, role: str = "admin") -> None:
    """Create an active staff user."""
    from admin.users import create_user
    from core.db import db

    with app.app_context(), db.write_transaction() as session:
        create_user(session, email, password, role=role)


def login(client: FlaskClient, email: str = EMAIL, password: str = PASSWORD, base_url: str | None = None):
    """Sign in with the login form (CSRF token included) and return the POST's response."""
    kwargs = {"base_url": base_url} if base_url else {}
    page = client.get("/admin/login", **kwargs)
    assert page.status_code == 200, page.status_code
    token = post_form(page.get_data(as_text=True)).hidden()["csrf_token"]
    # Over HTTPS Flask-WTF also wants a same-origin Referer, as a browser sends it.
    headers = {"Referer": f"{base_url}/admin/login"} if base_url else {}
    data = {"csrf_token": token, "email": email, "password": password}
    return client.post("/admin/login", data=data, headers=headers, **kwargs)
