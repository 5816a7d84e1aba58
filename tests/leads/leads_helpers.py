"""Helpers for lead-capture tests: fill the form like a browser does (token, signed start time)."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from tests.support.forms import hidden_fields

SLUG = "stem-cell-therapy"

VALID = {
    "first_name": "Dana",
    "last_name": "Whitfield",
    "email": "Dana.Whitfield@Example.com",
    "phone": "(303) 555-0123",
    "interest": "knee",
    "preferred_contact": "email",
    "message": "My left knee hurts when I climb stairs.",
    "email_consent": "y",
    "privacy_ack": "y",
}


def field_error(html: str, field_id: str) -> str | None:
    """The text of the error shown next to a field, if any."""
    match = re.search(rf'<p class="field-error" id="{field_id}-error">(.*?)</p>', html, re.S)
    return re.sub(r"<[^>]+>", "", match.group(1)).replace("Error: ", "").strip() if match else None


class Visitor:
    """A browser session on a landing page: GET the page, then POST the form with its hidden fields."""

    def __init__(self, client: FlaskClient, slug: str = SLUG) -> None:
        self.client = client
        self.slug = slug

    def open(self, query: str = "", **headers: str):
        """GET the landing page and remember its hidden fields."""
        response = self.client.get(f"/{self.slug}{query}", headers=headers)
        assert response.status_code == 200
        self.hidden = hidden_fields(response.get_data(as_text=True))
        return response

    def submit(self, fields: dict[str, str] | None = None, *, without: tuple[str, ...] = (), **overrides: str):
        """POST the form: VALID answers unless given, plus the page's hidden fields."""
        if not hasattr(self, "hidden"):
            self.open()
        data = {**self.hidden, **(VALID if fields is None else fields), **overrides}
        for name in without:
            data.pop(name, None)
        return self.client.post(f"/{self.slug}", data=data)
