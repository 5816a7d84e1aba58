"""Every page of the app, public and admin, on a phone (390 px) and a laptop (1280 px): nothing scrolls sideways,
no axe-core violation, chart labels at least 12 px. Pages come from the URL map, filled from seeded data (a lead,
a delivery, a post, a campaign), so a page added later is walked too, or this test says which value it lacks.

Needs Debian's chromium and `npm ci` in tests/node (axe-core); skips, saying why, without them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db import db
from tests.support.browser import AXE_JS, chromium, require_chromium, serve, site_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EMAIL = "front.desk@nexgenesis.example"
PASSWORD = "every page test password"
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "laptop": {"width": 1280, "height": 800}}
# Endpoints that are not pages for people: files, feeds, machine answers, redirects.
NOT_PAGES = {"static", "public.healthz", "public.sitemap", "public.robots", "api.openapi", "blog.index_redirect"}
NOT_PAGES |= {"public.media", "blog.feed"}  # image bytes and the Atom feed
MIN_LABEL_PX = 12

AUDIT_JS = """async (minPx) => {
  const overflow = document.documentElement.scrollWidth - window.innerWidth;
  const small = [];
  for (const t of document.querySelectorAll('svg text')) {
    const svg = t.ownerSVGElement, ctm = svg && svg.getScreenCTM();
    const px = parseFloat(getComputedStyle(t).fontSize) * (ctm ? Math.abs(ctm.a) : 1);
    if (t.getClientRects().length && px < minPx) small.push(t.textContent + ' (' + px.toFixed(1) + 'px)');
  }
  const axeResult = await axe.run(document, {resultTypes: ['violations']});
  const violations = axeResult.violations.map(v => v.id + ': ' + v.help + ' ' +
    v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '));
  return {overflow, small: small.slice(0, 5), violations};
}"""


def _seed(app) -> dict:
    """A lead whose welcome email left (outbox), a failed delivery, a suppression, a pending confirmation."""
    from admin.users import create_user
    from leads.services import capture_lead
    from mailer.models import Delivery
    from mailer.suppression import suppress
    from nurture.dispatch import tick
    from nurture.models import Enrollment

    with app.app_context():
        with db.write_transaction() as s:
            user = create_user(s, EMAIL, PASSWORD, "admin")
            data = {"first_name": "Imani", "last_name": "Okoro", "phone": "+13035550142", "interest": "knee"}
            lead = capture_lead(
                s,
                {**data, "email": "imani.okoro@example.com", "email_consent": True, "message": "Knee pain."},
                {"landing_slug": "stem-cell-therapy", "utm_source": "google", "utm_campaign": "spring-knee"},
            ).lead.id
            other = capture_lead(
                s, {"email": "bo@example.com", "first_name": "Bo"}, {"landing_slug": "stem-cell-therapy"}
            ).lead.id
            suppress(s, "bo@example.com", "unsubscribe", "link")
            user = user.id
        tick("every-page")
        with db.write_transaction() as s:
            sent = s.scalars(select(Delivery).where(Delivery.lead_id == lead)).first().id
            s.add(
                Delivery(
                    dedupe_key="every:failed",
                    lead_id=other,
                    campaign_slug="stem-cell-therapy",
                    step_id="the-science",
                    state="failed",
                    error="too long",
                    error_source="content",
                )
            )
            enrollment = s.scalars(select(Enrollment).where(Enrollment.lead_id == lead)).first().id
        outbox = sorted(Path(app.config["OUTBOX_DIR"]).glob("*.eml"))
        return {
            "lead": lead,
            "user": user,
            "delivery": sent,
            "enrollment": enrollment,
            "outbox": outbox[-1].name if outbox else None,
        }


def _value(endpoint: str, argument: str, seed: dict, app) -> object:
    """The seeded value a URL argument takes; a new kind of argument fails the test, naming itself."""
    from blog.loader import blog
    from mailer.tokens import make_token
    from nurture.tokens import make_confirm_token

    with app.app_context():
        values = {
            "lead_id": seed["lead"],
            "delivery_id": seed["delivery"],
            "user_id": seed["user"],
            "step_id": "welcome",
            "name": seed["outbox"],
            "slug": blog().posts[0].slug if endpoint.startswith(("blog.", "admin.posts_")) else "stem-cell-therapy",
            "segment": "prp",
            "token": make_confirm_token(seed["enrollment"])
            if endpoint == "nurture.confirm"
            else make_token(seed["lead"]),
        }
    if argument not in values:
        pytest.fail(f"{endpoint}: no seeded value for <{argument}>: add one to _value() in {Path(__file__).name}")
    return values[argument]


def pages(app, seed: dict) -> list[tuple[str, str]]:
    """(endpoint, path) of every GET page in the URL map."""
    from flask import url_for

    found = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint in NOT_PAGES:
            continue
        args = {name: _value(rule.endpoint, name, seed, app) for name in rule.arguments}
        with app.test_request_context():
            found.append((rule.endpoint, url_for(rule.endpoint, **args)))
    return sorted(found, key=lambda item: (item[0].startswith(("admin.", "alerts.")), item[1]))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The real app served on 127.0.0.1, seeded, with the clinic's phone set (it adds links to several pages)."""
    require_chromium(axe=True)
    folder = tmp_path_factory.mktemp("every-page")
    app = site_app(folder)
    app.config["CLINIC_PHONE"] = "+13035550100"
    seed = _seed(app)
    with serve(app) as base:
        yield {"app": app, "base": base, "pages": pages(app, seed)}
    db.session.remove()
    db.engine.dispose()


@pytest.fixture(scope="module")
def audits(site: dict) -> dict[str, dict]:
    """Each page opened at each width in one browser: sideways scroll, small chart labels, axe violations."""
    results: dict[str, dict] = {}
    with chromium(axe=True) as browser:
        for viewport, size in VIEWPORTS.items():
            # axe is injected as a script, which the CSP (rightly) forbids; only this context bypasses it.
            context = browser.new_context(viewport=size, bypass_csp=True)
            context.set_default_timeout(15_000)
            page = context.new_page()
            signed_in = False
            for endpoint, path in site["pages"]:
                if endpoint == "admin.login":
                    continue  # checked before signing in, below
                if endpoint.startswith(("admin.", "alerts.")) and not signed_in:
                    page.goto(site["base"] + "/admin/login")
                    results[f"{viewport} /admin/login"] = _audit(page)
                    page.get_by_label("Email").fill(EMAIL)
                    page.get_by_label("Password").fill(PASSWORD)
                    with page.expect_navigation():
                        page.get_by_role("button", name="Sign in").click()
                    signed_in = True
                # Asked first with the same cookies: a download (CSV, JSON) or an email shown in a sandboxed frame
                # is not a page to audit.
                probe = context.request.get(site["base"] + path, max_redirects=0)
                kind = probe.headers.get("content-type", "")
                if not kind.startswith("text/html") or "sandbox" in probe.headers.get("content-security-policy", ""):
                    continue
                response = page.goto(site["base"] + path)
                results[f"{viewport} {path}"] = {"status": response.status, **_audit(page)}
            context.close()
    return results


def _audit(page) -> dict:
    page.add_script_tag(path=str(AXE_JS))
    return page.evaluate(AUDIT_JS, MIN_LABEL_PX)


def test_every_page_is_walked(site: dict, audits: dict) -> None:
    walked = {key.split(" ", 1)[1] for key in audits}
    for expected in ("/", "/stem-cell-therapy", "/blog/", "/admin/", "/admin/leads", "/admin/deliveries"):
        assert expected in walked
    assert any(path.startswith("/admin/leads/") for path in walked)
    assert any(path.startswith("/blog/") and path != "/blog/" for path in walked)
    assert len(walked) >= 20, sorted(walked)


def test_no_page_scrolls_sideways(audits: dict) -> None:
    wide = {page: result["overflow"] for page, result in audits.items() if result["overflow"] > 1}
    assert wide == {}, "pages wider than the screen (px): " + json.dumps(wide, indent=1)


def test_no_page_has_axe_violations(audits: dict) -> None:
    found = {page: result["violations"] for page, result in audits.items() if result["violations"]}
    assert found == {}, json.dumps(found, indent=1)


def test_chart_labels_are_readable(audits: dict) -> None:
    small = {page: result["small"] for page, result in audits.items() if result["small"]}
    assert small == {}, f"SVG text under {MIN_LABEL_PX} px: " + json.dumps(small, indent=1)
    assert any("/admin/" in page for page in audits)


def test_pages_answer_as_pages(audits: dict) -> None:
    bad = {page: result["status"] for page, result in audits.items() if result.get("status", 200) >= 400}
    assert bad == {}


def test_form_errors_open_at_the_summary_with_links_to_each_field(site: dict) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport=VIEWPORTS["phone"])
        page.goto(site["base"] + "/stem-cell-therapy")
        with page.expect_navigation():
            page.locator("form.signup-form button[type=submit]").click()
        assert page.url.endswith("/stem-cell-therapy#form-errors")
        summary = page.locator("#form-errors")
        assert page.evaluate("() => document.querySelector(':target').id") == "form-errors"
        box = summary.bounding_box()
        assert 0 <= box["y"] < VIEWPORTS["phone"]["height"] / 2  # scrolled to it, not left ~700 px down
        links = summary.locator("a")
        targets = [links.nth(i).get_attribute("href") for i in range(links.count())]
        assert "#email" in targets
        assert all(page.locator(target).count() == 1 for target in targets)
        page.close()
