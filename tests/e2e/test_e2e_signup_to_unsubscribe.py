"""A visitor in real Chromium: UTM-tagged link, keyboard-only signup, the welcome email, one-click unsubscribe."""

from __future__ import annotations

import email
import re
from email import policy
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import select

from core.db import db
from leads.models import Consent, Lead, Submission
from mailer.models import Delivery
from nurture.models import Enrollment

SLUG = "stem-cell-therapy"
UTM = {
    "utm_source": "newsletter",
    "utm_medium": "email",
    "utm_campaign": "spring-knees",
    "utm_term": "knee pain",
    "utm_content": "hero-button",
}
MAX_TABS = 80

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _focused(page) -> dict[str, str | None]:
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            return {
                tag: el.tagName.toLowerCase(),
                type: (el.getAttribute('type') || '').toLowerCase(),
                name: el.getAttribute('name'),
                inForm: !!el.closest('form.signup-form'),
                text: (el.innerText || '').trim(),
            };
        }"""
    )


def fill_signup_form_with_keyboard(page) -> None:
    """Tab through the page and answer each field from the keyboard only, then press Enter on the button."""
    answers = {
        "first_name": "Grace",
        "last_name": "Hopper",
        "email": "Grace.Hopper@Example.com",
        "phone": "(303) 555-0199",
        "message": "My right shoulder aches when I lift my arm.",
    }
    done: list[str] = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        el = _focused(page)
        if not el["inForm"]:
            continue
        name = el["name"]
        assert name != "website", "the honeypot can be reached with the keyboard"
        if name in answers and name not in done:
            page.keyboard.type(answers[name])
        elif name == "interest" and name not in done:
            # A closed <select> changes its choice with the arrow keys: "", knee, hip, shoulder.
            for _ in range(3):
                page.keyboard.press("ArrowDown")
            assert page.eval_on_selector("select[name=interest]", "el => el.value") == "shoulder"
        elif name == "preferred_contact" and name not in done:
            # Tab lands on the checked radio (email); an arrow key moves the choice to the next one.
            page.keyboard.press("ArrowDown")
            assert page.eval_on_selector("input[name=preferred_contact]:checked", "el => el.value") == "phone"
        elif el["type"] == "checkbox" and name not in done:
            page.keyboard.press("Space")
        elif el["tag"] == "button":
            required = {"first_name", "email", "interest", "preferred_contact", "email_consent", "privacy_ack"}
            missing = required - set(done)
            assert not missing, f"the button came before these fields in the tab order: {missing}"
            page.keyboard.press("Enter")
            return
        done.append(name)
    raise AssertionError(f"no submit button after {MAX_TABS} tabs; reached {done}")


def press_button_with_keyboard(page, label: str) -> None:
    """Tab to the button with this text and press Enter on it."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        el = _focused(page)
        if el["tag"] == "button" and label.lower() in (el["text"] or "").lower():
            # The form posts and the browser navigates: wait for that page, not the one already shown.
            with page.expect_navigation():
                page.keyboard.press("Enter")
            return
    raise AssertionError(f"no button {label!r} reachable with Tab")


def unsubscribe_link(eml: Path) -> tuple[str, list[str]]:
    """The https/http link of List-Unsubscribe, and the unsubscribe links written in the body."""
    message = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    header = str(message["List-Unsubscribe"] or "")
    links = re.findall(r"<(https?://[^>]+)>", header)
    assert links, f"no http(s) List-Unsubscribe link: {header!r}"
    assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    body_links = []
    for part in message.walk():
        if part.get_content_type() in ("text/plain", "text/html"):
            body_links += re.findall(r"https?://[^\s\"'<>)]+/unsubscribe/[A-Za-z0-9_.\-]+", part.get_content())
    return links[0], body_links


def on_server(link: str, base: str) -> str:
    """The same path and query on the test server (SITE_URL in the email names the public host)."""
    parts, server = urlsplit(link), urlsplit(base)
    return urlunsplit((server.scheme, server.netloc, parts.path, parts.query, ""))


def test_visitor_signs_up_by_keyboard_gets_the_welcome_and_unsubscribes(app, browser, live_server):
    context = browser.new_context(timezone_id="America/Chicago", locale="en-US")
    page = context.new_page()
    csp_errors: list[str] = []
    page.on("console", lambda msg: csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    try:
        query = "&".join(f"{k}={v.replace(' ', '+')}" for k, v in UTM.items())
        page.goto(f"{live_server}/{SLUG}?{query}")
        assert page.locator("form.signup-form").is_visible()
        fill_signup_form_with_keyboard(page)
        page.wait_for_url(f"**/{SLUG}/thank-you#top")
        assert page.locator("h1").first.is_visible()
        thank_you = page.locator("main").inner_text()
        assert "Grace" not in thank_you, "the thank-you page repeats the name"
        assert "shoulder" not in thank_you.lower(), "the thank-you page repeats the area of interest"

        with app.app_context():
            lead = db.session.scalars(select(Lead)).one()
            assert lead.email == "grace.hopper@example.com"
            assert (lead.first_name, lead.last_name) == ("Grace", "Hopper")
            assert lead.phone == "+13035550199"
            assert (lead.interest, lead.preferred_contact) == ("shoulder", "phone")
            assert lead.email_opt_in is True
            assert lead.timezone == "America/Chicago", "the browser's time zone did not reach the lead"
            submission = db.session.scalars(select(Submission)).one()
            assert {k: getattr(submission, k) for k in UTM} == UTM
            assert submission.landing_slug == SLUG
            assert lead.source == "newsletter"

        result = app.test_cli_runner().invoke(args=["nurture", "tick"])
        assert result.exit_code == 0, result.output

        outbox = sorted(Path(app.config["OUTBOX_DIR"]).glob("*.eml"))
        assert len(outbox) == 1, f"expected the welcome email only, found {[p.name for p in outbox]}"
        message = email.message_from_bytes(outbox[0].read_bytes(), policy=policy.default)
        assert message["To"].addresses[0].addr_spec == "grace.hopper@example.com"
        text = outbox[0].read_text(errors="replace").lower()
        assert "shoulder" not in text, "the area of interest leaked into the email"
        assert "lift my arm" not in text, "the visitor's message leaked into the email"
        link, body_links = unsubscribe_link(outbox[0])
        assert link in body_links, "the footer's unsubscribe link differs from List-Unsubscribe"

        page.goto(on_server(link, live_server))
        assert "unsubscribe" in page.locator("h1").inner_text().lower()
        with app.app_context():
            assert db.session.scalars(select(Lead)).one().unsubscribed_at is None, "opening the link unsubscribed"
        press_button_with_keyboard(page, "Unsubscribe")
        assert "you are unsubscribed" in page.locator("h1").inner_text().lower()
    finally:
        context.close()

    with app.app_context():
        lead = db.session.scalars(select(Lead)).one()
        assert lead.unsubscribed_at is not None
        enrollment = db.session.scalars(select(Enrollment)).one()
        assert enrollment.state == "exited"
        assert enrollment.next_send_at is None
        assert enrollment.ended_at is not None
        withdrawals = db.session.scalars(select(Consent).where(Consent.granted.is_(False))).all()
        assert [c.purpose for c in withdrawals] == ["email_marketing"]
        assert db.session.scalars(select(Delivery.state)).all() == ["sent"]
    assert not csp_errors, f"the browser blocked content by CSP: {csp_errors}"
