"""Read an HTML form the way a browser does, so tests post exactly the fields the page renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


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


SLUG = "stem-cell-therapy"

# Answers a person would give; tests override single fields.
VALID_ANSWERS = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "phone": "(303) 555-0123",
    "interest": "knee",
    "preferred_contact": "email",
    "message": "My left knee hurts when I climb stairs.",
    "email_consent": "y",
    "privacy_ack": "y",
}
HONEYPOT = "website"


def signup_form(client, slug: str = SLUG, query: str = "") -> Form:
    """GET the landing page (the client keeps the session cookie the CSRF token belongs to) and read its form."""
    response = client.get(f"/{slug}{query}")
    assert response.status_code == 200, response.status_code
    return post_form(response.get_data(as_text=True))


def signup_data(form: Form, **answers: str) -> dict[str, str]:
    """The rendered hidden values (CSRF token, signed start time, UTM, slug) plus valid answers."""
    data = {**form.hidden(), **VALID_ANSWERS, **answers}
    data.pop(HONEYPOT, None)
    return {k: v for k, v in data.items() if v is not None}
