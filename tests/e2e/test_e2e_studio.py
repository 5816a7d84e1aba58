"""A marketer launches a campaign in real Chromium: duplicate, edit the page, the form and the emails, see a typo
beside its field, preview at phone width, publish, the running server serves it at once, signups get the new
emails, a changed subject reaches the next signup, and roll back."""

from __future__ import annotations

import email
import time
from email import policy
from pathlib import Path

import pytest

from tests.support.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MARKETER = "mia@nexgenesis.example"
NEW = "hair-restoration-prp"
HEADLINE = "Thinning hair? PRP uses your own platelets"
WELCOME = "Your hair restoration consultation request"
WELCOME_AGAIN = "About your hair restoration consultation"


def sign_in(page, base: str) -> None:
    page.goto(base + "/admin/login")
    page.get_by_label("Email").fill(MARKETER)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def press(page, name: str) -> None:
    """Press a button that submits its form and wait for the next page."""
    with page.expect_navigation():
        page.get_by_role("button", name=name, exact=True).first.click()


def sign_up(page, base: str, address: str) -> None:
    page.goto(f"{base}/{NEW}")
    page.fill("input[name=first_name]", "Robin")
    page.fill("input[name=email]", address)
    page.select_option("select[name=interest]", "scalp")
    page.check("input[name=email_consent]")
    page.check("input[name=privacy_ack]")
    with page.expect_navigation():
        page.locator("form.signup-form button[type=submit]").click()
    assert "/thank-you" in page.url, page.url


def subject_sent_to(app, address: str) -> str:
    """Run one nurture tick in this process (it shares the database) and read the subject sent to `address`."""
    result = app.test_cli_runner().invoke(args=["nurture", "tick"])
    assert result.exit_code == 0, result.output
    for path in sorted(Path(app.config["OUTBOX_DIR"]).glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if message["To"].addresses[0].addr_spec == address:
            return str(message["Subject"])
    raise AssertionError(f"nothing sent to {address}")


def overflow(page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")


def test_a_marketer_duplicates_edits_previews_publishes_and_rolls_back(app, make_user, browser, live_server):
    make_user(MARKETER, role="marketer")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        sign_in(page, live_server)
        page.goto(live_server + "/admin/campaigns")
        page.get_by_role("link", name="Duplicate prp-knee-osteoarthritis").click()
        page.get_by_label("Address of the landing page").fill(NEW)
        page.get_by_label("Name").fill("PRP for hair restoration")
        press(page, "Create the copy")
        assert page.url.endswith(f"/admin/campaigns/{NEW}/edit")

        # The page, the form's options (hair, not knees) and three emails.
        page.check("#f-active")
        page.fill("#f-page-headline", HEADLINE)
        page.fill("#f-page-title", "PRP for thinning hair")
        rows = page.locator("input[name^='page.interests['][name$='.value']").count()
        for i in range(rows):
            page.fill(f"[name='page.interests[{i}].value']", "")
            page.fill(f"[name='page.interests[{i}].label']", "")
        page.fill("[name='page.interests[0].value']", "scalp")
        page.fill("[name='page.interests[0].label']", "Thinning hair on top")
        page.fill("[name='page.interests[1].value']", "hairline")
        page.fill("[name='page.interests[1].label']", "A receding hairline")
        page.fill("#f-steps-0-subject", WELCOME)
        page.fill("#f-steps-0-body", "Hi {{ first_name }},\n\nThank you for asking about PRP for your hair.\n")
        page.fill("#f-steps-1-subject", "PRP or a transplant?")
        press(page, "Add an email at the end")
        page.fill("#f-steps-2-subject", "What a PRP session for hair is like")
        page.fill("#f-steps-2-body", "Hi {{ first_name }},\n\nA session takes about an hour.\n")
        page.fill("#f-steps-2-delay", "2x")
        press(page, "Save draft")

        error = page.locator("#f-steps-2-delay-error")
        assert "'2x' is not a duration" in error.inner_text()
        delay_box, error_box = page.locator("#f-steps-2-delay").bounding_box(), error.bounding_box()
        assert 0 <= error_box["y"] - (delay_box["y"] + delay_box["height"]) < 40, "the error is not beside the delay"
        assert page.locator("#problems a[href='#f-steps-2-delay']").count() == 1
        assert context.request.get(f"{live_server}/{NEW}").status == 404, "a draft with a problem went live"

        page.fill("#f-steps-2-delay", "1w")
        press(page, "Save draft")
        assert "No problems: this draft can be published." in page.locator("main").inner_text()

        # Preview the welcome at phone width, rendered as it will be sent.
        press(page, "Save and preview")
        page.get_by_role("link", name="1. welcome").click()
        page.get_by_role("link", name="Phone width (390 px)").click()
        frame = page.locator("iframe.email-frame")
        assert frame.bounding_box()["width"] <= 390
        assert WELCOME in page.locator(".preview-subject").inner_text()
        assert "Thank you for asking about PRP for your hair" in page.locator(".email-text").inner_text()

        # Publish: the server that was already running serves the page within 5 seconds.
        page.get_by_role("link", name="Publish…").click()
        assert "Nobody is in this sequence yet" in page.locator("main").inner_text()
        page.get_by_label("Note for the history").fill("launch")
        started = time.monotonic()
        press(page, "Publish now")
        status = 0
        while time.monotonic() - started < 5:
            response = context.request.get(f"{live_server}/{NEW}")
            status = response.status
            if status == 200 and HEADLINE in response.text():
                break
            time.sleep(0.2)
        assert status == 200, f"/{NEW} answered {status} 5 s after publishing"

        visitor = browser.new_context()
        signup = visitor.new_page()
        sign_up(signup, live_server, "robin.one@example.com")
        options = signup.goto(f"{live_server}/{NEW}").text()
        assert "A receding hairline" in options
        assert "Knee" not in options.split('name="interest"', 1)[1].split("</select>", 1)[0]
        assert subject_sent_to(app, "robin.one@example.com") == WELCOME

        # A changed subject reaches the next signup.
        page.goto(f"{live_server}/admin/campaigns/{NEW}/edit")
        page.fill("#f-steps-0-subject", WELCOME_AGAIN)
        press(page, "Save and publish…")
        press(page, "Publish now")
        sign_up(signup, live_server, "robin.two@example.com")
        assert subject_sent_to(app, "robin.two@example.com") == WELCOME_AGAIN
        visitor.close()

        # Roll back to the first version: the draft and the live site follow.
        assert "/history" in page.url
        press(page, "Roll back to version 1")
        assert "version 1 is live again as version 3" in page.locator(".flashes").inner_text()
        page.goto(f"{live_server}/admin/campaigns/{NEW}/edit")
        assert page.locator("#f-steps-0-subject").input_value() == WELCOME

        # The editor fits a phone: nothing scrolls sideways.
        page.set_viewport_size({"width": 390, "height": 844})
        for path in (f"/admin/campaigns/{NEW}/edit", "/admin/campaigns", f"/admin/campaigns/{NEW}/history"):
            page.goto(live_server + path)
            assert overflow(page) <= 1, f"{path} scrolls sideways at 390 px"
    finally:
        context.close()
