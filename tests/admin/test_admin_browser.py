"""In Chromium: a visitor signs up on the landing page; staff sign in, find the lead, book it, see its nurture end.
Every admin screen is then checked with axe-core, on a laptop and a tablet viewport.

Needs Debian's chromium (apt-get install chromium); axe-core comes from `npm ci` in tests/node. Each skips, saying why.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from core.db import db
from tests.support.browser import AXE_JS, chromium, require_chromium, serve, site_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EMAIL = "front.desk@nexgenesis.example"
PASSWORD = "browser test password"
VIEWPORTS = {"laptop": {"width": 1366, "height": 800}, "tablet": {"width": 768, "height": 1024}}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The real app served by werkzeug on 127.0.0.1 (random port), on its own SQLite database."""
    require_chromium()
    app = site_app(tmp_path_factory.mktemp("admin-browser"))
    with app.app_context(), db.write_transaction() as s:
        from admin.users import create_user

        create_user(s, EMAIL, PASSWORD, "admin")
    with serve(app) as base:
        yield {"app": app, "base": base}
    db.session.remove()
    db.engine.dispose()


@pytest.fixture(scope="module")
def browser(site: dict):
    with chromium() as launched:
        yield launched


def _sign_in(page, base: str) -> None:
    page.goto(f"{base}/admin/")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")  # the form works from the keyboard
    page.wait_for_url(f"{base}/admin/")


def test_signup_then_book_the_lead_in_the_admin(site: dict, browser) -> None:
    base = site["base"]
    context = browser.new_context()
    context.set_default_timeout(15_000)
    errors: list[str] = []
    page = context.new_page()
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    page.goto(f"{base}/stem-cell-therapy?utm_source=facebook&utm_campaign=spring-knee")
    page.fill("#first_name", "Imani")
    page.fill("#last_name", "Okoro")
    page.fill("#email", "imani.okoro@example.com")
    page.select_option("#interest", "knee")
    page.check("#email_consent")
    page.check("#privacy_ack")
    with page.expect_navigation():
        page.locator("main form button[type=submit]").first.click()
    assert page.url.endswith("/stem-cell-therapy/thank-you#top")

    _sign_in(page, base)
    assert page.get_by_role("heading", name="Funnel").is_visible()
    assert page.get_by_role("img", name="Funnel, last 30 days").is_visible()

    page.get_by_role("link", name="Leads").click()
    page.get_by_label("Search name, email or phone").fill("okoro")
    page.get_by_role("button", name="Apply").click()
    page.get_by_role("link", name="Imani Okoro").click()
    assert page.locator("#enrollment-stem-cell-therapy .enrollment-state").inner_text() == "active"

    page.get_by_label("New status").select_option("booked")
    page.get_by_role("button", name="Change status").click()
    assert "Status set to Booked." in page.locator(".flashes").inner_text()
    assert page.locator("#enrollment-stem-cell-therapy .enrollment-state").inner_text() == "exited"
    assert "status:booked" in page.locator("#enrollment-stem-cell-therapy").inner_text()
    assert "Status new → booked" in page.locator(".timeline").inner_text()
    assert errors == [], errors  # no CSP violations or script errors
    context.close()


def _admin_urls(site: dict) -> list[str]:
    from sqlalchemy import select

    from leads.models import Lead
    from mailer.models import Delivery
    from studio.registry import registry

    with site["app"].app_context():
        lead_id = db.session.scalars(select(Lead.id)).first()
        campaign = registry().get("stem-cell-therapy")
        step = campaign.steps[0].id
        if lead_id and db.session.scalar(select(Delivery.id).where(Delivery.dedupe_key == "axe:failed")) is None:
            # A failure to fix: the requeue buttons, the bulk form and the lead's "waiting" note are checked too.
            failed = {"kind": "nurture", "state": "failed", "error": "too long", "error_source": "content"}
            db.session.add(
                Delivery(dedupe_key="axe:failed", lead_id=lead_id, campaign_slug=campaign.slug, step_id=step, **failed)
            )
            db.session.commit()
    urls = [
        "/admin/",
        "/admin/leads",
        "/admin/campaigns",
        f"/admin/campaigns/{campaign.slug}",
        f"/admin/campaigns/{campaign.slug}/steps/{step}/preview",
        "/admin/deliveries",
        f"/admin/deliveries?state=failed&campaign={campaign.slug}",
        "/admin/outbox",
        "/admin/users",
    ]
    if lead_id:
        _repeat_with_other_details(site, lead_id)  # so the lead's page shows the details to accept
        urls += [f"/admin/leads/{lead_id}", f"/admin/leads/{lead_id}/erase"]
    return urls


def _repeat_with_other_details(site: dict, lead_id: int) -> None:
    from leads.models import Lead
    from leads.services import capture_lead

    with site["app"].app_context(), db.write_transaction() as s:
        lead = s.get(Lead, lead_id)
        if lead.email:
            data = {"email": lead.email, "first_name": "Someone", "phone": "+13035550142", "interest": "hip"}
            capture_lead(s, data, {"landing_slug": "stem-cell-therapy"})


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_admin_screens_have_no_axe_violations(site: dict, browser, viewport: str) -> None:
    if not AXE_JS.exists():
        pytest.skip("axe-core is missing: run `npm ci` in tests/node")
    base = site["base"]
    login_page = browser.new_context(viewport=VIEWPORTS[viewport], bypass_csp=True)
    page = login_page.new_page()
    page.goto(f"{base}/admin/login")
    page.add_script_tag(path=str(AXE_JS))
    found = {"/admin/login": page.evaluate("async () => (await axe.run()).violations")}
    _sign_in(page, base)
    for url in _admin_urls(site):
        page.goto(base + url)
        # axe is injected as a script, which the admin's CSP forbids; only this context bypasses it.
        page.add_script_tag(path=str(AXE_JS))
        found[url] = page.evaluate("async () => (await axe.run()).violations")
        # Nothing wider than the screen except inside scrollable table regions.
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{url} scrolls sideways by {overflow}px at {viewport}"
    problems = {
        url: [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
        for url, violations in found.items()
        if violations
    }
    assert problems == {}, json.dumps(problems, indent=1)
    login_page.close()
