"""A marketer runs an A/B test in real Chromium: a second subject on the welcome, published; signups get both
subjects (each lead one) and the campaign page counts them per variant."""

from __future__ import annotations

import email
from collections import Counter
from collections.abc import Iterator
from email import policy
from pathlib import Path

import pytest

from tests.e2e.test_e2e_studio import press, sign_in
from tests.support.database import fresh_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MARKETER = "mia@nexgenesis.example"
SLUG = "stem-cell-therapy"
SUBJECT_B = "Your free consultation: what happens next"
SIGNUPS = 12


@pytest.fixture
def app(make_config) -> Iterator[object]:
    """The app without the per-address signup limit: a dozen visitors sign up from 127.0.0.1 in this test."""
    yield from fresh_app(make_config(SIGNUP_RATE_LIMIT="1000/minute"))


def sign_up(page, base: str, address: str) -> None:
    page.goto(f"{base}/{SLUG}")
    page.fill("input[name=first_name]", "Sam")
    page.fill("input[name=email]", address)
    page.select_option("select[name=interest]", "knee")
    page.check("input[name=email_consent]")
    page.check("input[name=privacy_ack]")
    with page.expect_navigation():
        page.locator("form.signup-form button[type=submit]").click()
    assert "/thank-you" in page.url, page.locator("main").inner_text()[:800]


def test_a_marketer_adds_a_second_subject_and_sees_both_sent_and_counted(app, make_user, browser, live_server):
    make_user(MARKETER, role="marketer")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        sign_in(page, live_server)
        page.goto(f"{live_server}/admin/campaigns/{SLUG}/edit")
        own = page.locator("#f-steps-0-subject").input_value()
        page.locator("#f-steps-0-variants summary").click()
        page.fill("#f-steps-0-variants-0-subject", SUBJECT_B)
        press(page, "Save draft")
        assert "No problems: this draft can be published." in page.locator("main").inner_text()
        press(page, "Save and publish…")
        press(page, "Publish now")

        visitor = browser.new_context()
        signup = visitor.new_page()
        for n in range(SIGNUPS):
            sign_up(signup, live_server, f"sam{n}@example.com")
        visitor.close()
        result = app.test_cli_runner().invoke(args=["nurture", "tick"])
        assert result.exit_code == 0, result.output
        subjects = Counter(
            str(email.message_from_bytes(path.read_bytes(), policy=policy.default)["Subject"])
            for path in Path(app.config["OUTBOX_DIR"]).glob("*.eml")
        )
        assert set(subjects) == {own, SUBJECT_B}, subjects
        assert sum(subjects.values()) == SIGNUPS

        page.goto(f"{live_server}/admin/campaigns/{SLUG}")
        tests = page.locator("#experiments")
        text = tests.inner_text()
        assert SUBJECT_B in text
        assert own in text
        assert "Too early to tell" in text  # 12 sends prove nothing, and the page says so
        sent = [int(cell.inner_text()) for cell in tests.locator("td[data-label='Sent']").all()]
        assert sorted(sent) == sorted([subjects[own], subjects[SUBJECT_B]])
        assert page.get_by_role("button", name="Promote").count() == 0
    finally:
        context.close()
