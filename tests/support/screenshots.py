"""Screenshots of the key pages at 390 and 1280 px into docs/screenshots/ (PNG, 256 colours when pngquant is here).

    .venv/bin/python -m tests.support.screenshots [NAME-PREFIX]

Seeds a throwaway app like the every-page browser test; needs Debian's chromium.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.e2e.test_e2e_every_page import EMAIL, PASSWORD, VIEWPORTS, _seed
from tests.support.browser import REPO, chromium, serve, site_app

OUT = REPO / "docs" / "screenshots"
# (file name, path, signed in, full page)
SHOTS = [
    ("home", "/", False, True),
    ("landing", "/stem-cell-therapy", False, False),
    ("landing-evidence", "/stem-cell-therapy", False, False),
    ("landing-errors", None, False, False),
    ("thank-you", "/stem-cell-therapy/thank-you", False, True),
    ("blog", "/blog/", False, True),
    ("admin-dashboard", "/admin/", True, True),
    ("admin-leads", "/admin/leads", True, True),
    ("admin-lead", "/admin/leads/{lead}", True, True),
    ("admin-deliveries", "/admin/deliveries", True, True),
    ("admin-email", "/admin/deliveries/{delivery}/email", True, False),
    ("admin-studio-editor", "/admin/campaigns/prp-knee-osteoarthritis/edit", True, False),
    ("admin-studio-publish", "/admin/campaigns/stem-cell-therapy/publish", True, True),
    ("admin-studio-preview", "/admin/campaigns/stem-cell-therapy/draft?show=welcome&width=phone", True, False),
]


def _compress(path: Path) -> None:
    pngquant = shutil.which("pngquant")  # Debian: apt-get install pngquant
    if pngquant:
        subprocess.run([pngquant, "--force", "--skip-if-larger", "--strip", "--output", str(path), "256", str(path)])


def _studio_drafts(app) -> None:
    """Drafts worth showing: a new headline and subject to publish, and a typo in a delay beside its field."""
    from core.db import db
    from studio import services

    with app.app_context(), db.write_transaction() as s:
        record = services.get_record(s, "stem-cell-therapy")
        doc = services.normalized(record.draft)
        doc["page"]["headline"] = "Knee pain? Ask about your own stem cells"
        doc["steps"][0]["subject"] = "We have your request, {{ first_name }}"
        services.save_draft(s, record, doc, record.draft_revision, EMAIL)
        record = services.get_record(s, "prp-knee-osteoarthritis")
        doc = services.normalized(record.draft)
        doc["steps"][1]["delay"] = "2x"
        services.save_draft(s, record, doc, record.draft_revision, EMAIL)


def main(only: str = "") -> None:
    """Write one PNG per page and width (only the pages whose names start with `only`)."""
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        app = site_app(Path(folder))
        app.config["CLINIC_PHONE"] = "+13035550100"
        seed = _seed(app)
        _studio_drafts(app)
        with serve(app) as base, chromium() as browser:
            for size in VIEWPORTS.values():
                context = browser.new_context(viewport=size, device_scale_factor=1)
                page = context.new_page()
                signed_in = False
                for name, path, needs_login, full in SHOTS:
                    if not name.startswith(only):
                        continue
                    if needs_login and not signed_in:
                        page.goto(base + "/admin/login")
                        page.get_by_label("Email").fill(EMAIL)
                        page.get_by_label("Password").fill(PASSWORD)
                        with page.expect_navigation():
                            page.get_by_role("button", name="Sign in").click()
                        signed_in = True
                    if path is None:
                        page.goto(base + "/stem-cell-therapy")
                        with page.expect_navigation():
                            page.locator("form.signup-form button[type=submit]").click()
                    else:
                        page.goto(base + path.format(**seed))
                    if name == "landing-evidence":
                        page.locator(".landing-body table").scroll_into_view_if_needed()
                    target = OUT / f"{name}-{size['width']}.png"
                    page.screenshot(path=str(target), full_page=full)
                    _compress(target)
                    print(target.relative_to(REPO), target.stat().st_size // 1024, "KB")
                context.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
