"""Staff in tests: sign in through the real login form, and a signed-in client that posts forms with their token."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.support.factories import PASSWORD, STAFF_EMAIL
from tests.support.forms import csrf_from


def login(client: FlaskClient, email: str = STAFF_EMAIL, password: str = PASSWORD, base_url: str | None = None):
    """Sign in with the login form (CSRF token included) and return the POST's response."""
    kwargs = {"base_url": base_url} if base_url else {}
    page = client.get("/admin/login", **kwargs)
    assert page.status_code == 200, page.status_code
    token = csrf_from(page.get_data(as_text=True))
    # Over HTTPS Flask-WTF also wants a same-origin Referer, as a browser sends it.
    headers = {"Referer": f"{base_url}/admin/login"} if base_url else {}
    data = {"csrf_token": token, "email": email, "password": password}
    return client.post("/admin/login", data=data, headers=headers, **kwargs)


class Staff:
    """A signed-in member of staff: GETs pages and POSTs forms with the page's CSRF token."""

    def __init__(self, client: FlaskClient, email: str) -> None:
        self.client = client
        self.email = email
        self.token = ""

    def get(self, url: str, **kwargs):
        response = self.client.get(url, **kwargs)
        html = response.get_data(as_text=True)
        if 'name="csrf_token"' in html:
            self.token = csrf_from(html)
        return response

    def post(self, url: str, data: dict | None = None, **kwargs):
        if not self.token:
            self.get("/admin/")
        return self.client.post(url, data={"csrf_token": self.token, **(data or {})}, **kwargs)
