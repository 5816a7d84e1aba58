"""Screenshots of the key pages at 390 and 1280 px into docs/screenshots/ (PNG, 256 colours when pngquant is here).

    .venv/bin/python -m tests.support.screenshots

Seeds a throwaway app like the every-page browser test; needs Debian's chromium.
"""

from __future__ import annotations

import shutil
import subprocess
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
]


def _compress(path: Path) -> None:
    pngquant = shutil.which("pngquant")  # Debian: apt-get install pngquant
    if pngquant:
        subprocess.run([pngquant, "--force", "--skip-if-larger", "--strip", "--output", str(path), "256", str(path)])


def main() -> None:
    """Write one PNG per page and width."""
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        app = site_app(Path(folder))
        app.config["CLINIC_PHONE"] = "+13035550100"
        seed = _seed(app)
        with serve(app) as base, chromium() as browser:
            for size in VIEWPORTS.values():
                context = browser.new_context(viewport=size, device_scale_factor=1)
                page = context.new_page()
                signed_in = False
                for name, path, needs_login, full in SHOTS:
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
    main()
