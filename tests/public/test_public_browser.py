"""Every public page in a real browser: valid HTML (Nu HTML Checker), no axe-core violations, no CSP errors.

Needs java (for vnu.jar), Debian's chromium and `npm ci` in tests/node; each check skips, saying why, without them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from blog.loader import load_posts
from core.db import db
from leads.models import Lead
from mailer.tokens import make_token
from studio.files import load_campaigns
from tests.support.browser import AXE_JS, REPO, chromium, serve, site_app
from tests.support.content import CAMPAIGNS, POSTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NODE_MODULES = REPO / "tests" / "node" / "node_modules"
VNU_JAR = NODE_MODULES / "vnu-jar" / "build" / "dist" / "vnu.jar"

_campaigns = [c for c in load_campaigns(CAMPAIGNS)[0].values() if c.active]
_posts = load_posts(POSTS)[0]
PAGES = (
    ["home", "privacy", "blog-index", "not-found", "unsubscribe", "unsubscribed"]
    + [f"landing:{c.slug}" for c in _campaigns]
    + [f"landing-errors:{c.slug}" for c in _campaigns]
    + [f"thank-you:{c.slug}" for c in _campaigns]
    + [f"post:{p.slug}" for p in _posts]
)


def _path(name: str, site: dict, audit: bool = False) -> str:
    kind, _, slug = name.partition(":")
    unsubscribe = site["unsubscribe"][int(audit)]
    return {
        "home": "/",
        "privacy": "/privacy",
        "blog-index": "/blog/",
        "not-found": "/no-such-page",
        "unsubscribe": unsubscribe,
        "unsubscribed": unsubscribe,
        "landing": f"/{slug}",
        "landing-errors": f"/{slug}",
        "thank-you": f"/{slug}/thank-you",
        "post": f"/blog/{slug}",
    }[kind]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The real app served by werkzeug on 127.0.0.1 (random port), on its own SQLite database."""
    app = site_app(tmp_path_factory.mktemp("browser-site"))
    # One subscriber per browser pass: the first pass's click unsubscribes its own.
    with app.app_context():
        with db.write_transaction() as session:
            leads = [Lead(email=f"reader{n}@example.com", first_name="Reader") for n in range(2)]
            session.add_all(leads)
        unsubscribe = [f"/unsubscribe/{make_token(lead.id)}" for lead in leads]
    with serve(app) as base:
        yield {"app": app, "base": base, "unsubscribe": unsubscribe}
    db.session.remove()
    db.engine.dispose()


def _visit(page, base: str, name: str, path: str) -> tuple[int, str]:
    """Open a page the way a visitor reaches it; returns the status and the HTML the server sent."""
    kind = name.partition(":")[0]
    if kind in ("landing-errors", "unsubscribed"):
        page.goto(base + path)
        with page.expect_navigation() as navigation:
            page.locator("main form button[type=submit]").first.click()
        response = navigation.value
    else:
        response = page.goto(base + path)
    return response.status, response.text()


@pytest.fixture(scope="module")
def browsed(site: dict) -> dict:
    """Each page loaded twice in Chromium: as served (console errors, CSP) and with axe-core injected."""
    results: dict[str, dict] = {}
    with chromium(axe=True) as browser:
        strict = browser.new_context()
        # axe is injected as a script, which the site's CSP (rightly) forbids; only this context bypasses it.
        audit = browser.new_context(bypass_csp=True)
        strict.set_default_timeout(10_000)
        audit.set_default_timeout(10_000)
        for name in PAGES:
            path = _path(name, site)
            page = strict.new_page()
            errors: list[str] = []
            page.on("console", lambda msg, errors=errors: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            status, html = _visit(page, site["base"], name, path)
            page.close()
            page = audit.new_page()
            _visit(page, site["base"], name, _path(name, site, audit=True))
            page.add_script_tag(path=str(AXE_JS))
            violations = page.evaluate(
                "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
                " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))"
            )
            page.close()
            results[name] = {"status": status, "html": html, "errors": errors, "violations": violations}
    return results


@pytest.fixture(scope="module")
def validated(browsed: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Nu HTML Checker errors per page, from one run of vnu.jar over the HTML the server sent."""
    if shutil.which("java") is None:
        pytest.skip("java is not installed (apt-get install default-jre-headless)")
    if not VNU_JAR.exists():
        pytest.skip("vnu-jar is missing: run `npm ci` in tests/node")
    folder = tmp_path_factory.mktemp("vnu")
    return _vnu(folder, {name: result["html"] for name, result in browsed.items()})


def _vnu(folder: Path, pages: dict[str, str]) -> dict[str, list[str]]:
    """Run vnu.jar once over all pages; returns the errors of each page."""
    files = {}
    for name, html in pages.items():
        path = folder / (name.replace(":", "--") + ".html")
        path.write_text(html, encoding="utf-8")
        files[path.name] = name
    run = subprocess.run(
        [
            "java",
            "-jar",
            str(VNU_JAR),
            "--errors-only",
            "--format",
            "json",
            "--exit-zero-always",
            *map(str, folder.glob("*.html")),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    errors: dict[str, list[str]] = {name: [] for name in pages}
    for message in json.loads(run.stderr)["messages"]:
        # vnu names files as file:/tmp/...; match on the file name so no message can go unassigned.
        name = files[message["url"].rsplit("/", 1)[-1]]
        where = f"line {message.get('lastLine', '?')}"
        errors[name].append(f"{where}: {message.get('message')} [{message.get('extract', '').strip()}]")
    return errors


EXPECTED_STATUS = {"not-found": 404, "landing-errors": 400}


@pytest.mark.parametrize("name", PAGES)
def test_page_loads_without_console_or_csp_errors(name, site, browsed):
    result = browsed[name]
    status = EXPECTED_STATUS.get(name.partition(":")[0], 200)
    assert result["status"] == status
    # Chromium logs the page's own error status; anything else logged is a real problem.
    own = f"the server responded with a status of {status}"
    assert [error for error in result["errors"] if own not in error] == []


@pytest.mark.parametrize("name", PAGES)
def test_page_has_no_axe_violations(name, site, browsed):
    assert browsed[name]["violations"] == []


@pytest.mark.parametrize("name", PAGES)
def test_page_is_valid_html(name, site, validated):
    assert validated[name] == []


def test_the_html_checker_does_report_errors(tmp_path):
    if shutil.which("java") is None or not VNU_JAR.exists():
        pytest.skip("java or vnu-jar is missing (apt-get install default-jre-headless; npm ci in tests/node)")
    bad = '<!doctype html><html lang="en"><title>x</title><p id="a">x</p><p id="a">y</p>'
    assert any("Duplicate ID" in error for error in _vnu(tmp_path, {"bad": bad})["bad"])


def test_axe_does_report_violations():
    with chromium(axe=True) as browser:
        page = browser.new_page()
        page.set_content('<!doctype html><html lang="en"><title>x</title><main><input type="text"></main></html>')
        page.add_script_tag(path=str(AXE_JS))
        ids = page.evaluate("async () => (await axe.run(document)).violations.map(v => v.id)")
    assert "label" in ids
