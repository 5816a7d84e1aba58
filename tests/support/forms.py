"""Forms read and filled the way a browser does: the one HTML form parser, a visitor on a landing page, and the
answers a person would give."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from flask.testing import FlaskClient

SLUG = "stem-cell-therapy"
HONEYPOT = "website"


@dataclass
class Field:
    """One named control of a form: input, select or textarea."""

    tag: str
    type: str
    name: str
    value: str = ""
    checked: bool = False
    options: list[str] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class Form:
    """A form's action, method and controls in document order."""

    action: str
    method: str
    fields: list[Field] = field(default_factory=list)

    def names(self) -> list[str]:
        """Distinct control names in document order."""
        return list(dict.fromkeys(f.name for f in self.fields))

    def hidden(self) -> dict[str, str]:
        """The hidden inputs with their rendered values (CSRF token, signed timestamp, UTM, slug)."""
        return {f.name: f.value for f in self.fields if f.tag == "input" and f.type == "hidden"}

    def by_name(self, name: str) -> list[Field]:
        """Every control with this name (radio groups have several)."""
        return [f for f in self.fields if f.name == name]


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._select: Field | None = None
        self._textarea: Field | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(action=a.get("action", ""), method=a.get("method", "get").lower()))
            return
        if not self.forms:
            return
        form = self.forms[-1]
        if tag == "input" and a.get("name"):
            form.fields.append(
                Field("input", a.get("type", "text").lower(), a["name"], a.get("value", ""), "checked" in a, attrs=a)
            )
        elif tag == "select" and a.get("name"):
            self._select = Field("select", "select", a["name"], attrs=a)
            form.fields.append(self._select)
        elif tag == "option" and self._select is not None:
            self._select.options.append(a.get("value", ""))
        elif tag == "textarea" and a.get("name"):
            self._textarea = Field("textarea", "textarea", a["name"], attrs=a)
            form.fields.append(self._textarea)

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._textarea.value += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def parse_forms(html: str) -> list[Form]:
    """Every form in the page."""
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def post_form(html: str) -> Form:
    """The first POST form of the page; fails the test if there is none."""
    forms = [f for f in parse_forms(html) if f.method == "post"]
    assert forms, "the page has no POST form"
    return forms[0]


def hidden_fields(html: str) -> dict[str, str]:
    """Every hidden input of a page (all its forms), as a browser would send it back."""
    return {name: value for form in parse_forms(html) for name, value in form.hidden().items()}


def csrf_from(html: str) -> str:
    """The CSRF token rendered into a page."""
    token = hidden_fields(html).get("csrf_token")
    assert token, "page has no CSRF token"
    return token


# Answers a person would give; tests override single fields.
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


def signup_form(client: FlaskClient, slug: str = SLUG, query: str = "") -> Form:
    """GET the landing page (the client keeps the session cookie the CSRF token belongs to) and read its form."""
    response = client.get(f"/{slug}{query}")
    assert response.status_code == 200, response.status_code
    return post_form(response.get_data(as_text=True))


def signup_data(form: Form, **answers: str | None) -> dict[str, str]:
    """The rendered hidden values (CSRF token, signed start time, UTM, slug) plus valid answers."""
    data = {**form.hidden(), **VALID, **answers}
    data.pop(HONEYPOT, None)
    return {k: v for k, v in data.items() if v is not None}


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
