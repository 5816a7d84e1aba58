"""In Chromium: staff upload a picture, write a post with it, schedule it two minutes ahead; it is absent from the
blog, the sitemap and the feed until its time, then present without a restart; a campaign email links it, and
unpublishing it is then refused, naming the campaign.

Needs Debian's chromium (apt-get install chromium); skips, saying why, without it.
"""

from __future__ import annotations

import copy
import io
import re
from datetime import UTC, datetime

import pytest
from PIL import Image

from core.clock import FrozenClock
from core.db import db
from studio import services
from tests.support.browser import chromium, require_chromium, serve, site_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EMAIL = "writer@nexgenesis.example"
PASSWORD = "browser test password"
SLUG = "knee-pain-in-winter"


def picture() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (1000, 600), (20, 110, 100)).save(buffer, "PNG")
    return buffer.getvalue()


def test_write_schedule_and_guard_a_post(tmp_path) -> None:
    require_chromium()
    app = site_app(tmp_path)
    clock = FrozenClock(datetime(2026, 11, 23, 16, 0, tzinfo=UTC))  # 09:00 in Denver, the clinic's zone
    app.extensions["clock"] = clock
    with app.app_context(), db.write_transaction() as s:
        from admin.users import create_user

        create_user(s, EMAIL, PASSWORD, "admin")
    with serve(app) as base, chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{base}/admin/")
        page.get_by_label("Email").fill(EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{base}/admin/")

        page.goto(f"{base}/admin/images")
        page.locator("#file").set_input_files({"name": "knee.png", "mimeType": "image/png", "buffer": picture()})
        page.locator("#alt").fill("A knee wrapped in a scarf")
        page.get_by_role("button", name="Upload").click()
        key = re.search(r"media:([0-9a-f]+)", page.locator(".flash").inner_text()).group(1)

        page.goto(f"{base}/admin/posts")
        page.locator("#slug").fill(SLUG)
        page.locator("#title").fill("Knee pain in winter")
        page.get_by_role("button", name="Start the draft").click()
        page.locator("#description").fill("Why knees ache more in the cold and what helps, in plain words.")
        page.locator("#image_src").fill(f"media:{key}")
        page.locator("#image_alt").fill("A knee wrapped in a scarf")
        page.locator("#body").fill("## Why\n\nCold stiffens the joint. Keep moving, gently.\n")
        page.get_by_role("button", name="Save draft").click()
        assert "Draft saved." in page.content()

        page.get_by_label("At a set time").check()
        page.locator("#day").fill("2026-11-23")
        page.locator("#at").fill("09:02")
        page.get_by_role("button", name="Publish the saved draft").click()
        assert "goes live on" in page.locator(".flash").inner_text()

        def visible() -> dict[str, bool]:
            return {
                "index": f"/blog/{SLUG}" in (page.goto(f"{base}/blog/") and page.content()),
                "sitemap": f"/blog/{SLUG}<" in page.request.get(f"{base}/sitemap.xml").text(),
                "feed": f"/blog/{SLUG}<" in page.request.get(f"{base}/blog/feed.xml").text(),
                "page": page.request.get(f"{base}/blog/{SLUG}").status == 200,
            }

        assert visible() == {"index": False, "sitemap": False, "feed": False, "page": False}
        clock.advance(minutes=2)  # no restart, nobody publishes: the time has come
        assert visible() == {"index": True, "sitemap": True, "feed": True, "page": True}
        page.goto(f"{base}/blog/{SLUG}")
        image = page.locator("img.post-image")
        assert image.get_attribute("alt") == "A knee wrapped in a scarf"
        assert f"/media/{key}-480.png 480w" in image.get_attribute("srcset")
        image.scroll_into_view_if_needed()
        page.wait_for_function("() => document.querySelector('img.post-image').naturalWidth > 0")

        # A campaign email links the post (the campaign editor is its own screen; its store is used here).
        with app.app_context():
            record = services.get_record(db.session, "stem-cell-therapy")
            draft = copy.deepcopy(record.draft)
            draft["steps"][0]["body"] += f"\n\n[Knee pain in winter](blog:{SLUG})\n"
            services.save_draft(db.session, record, draft, record.draft_revision, EMAIL)
            services.publish(db.session, record, EMAIL)
            db.session.commit()

        page.goto(f"{base}/admin/posts/{SLUG}")
        page.get_by_role("button", name="Unpublish").click()
        refusal = page.locator(".flash").inner_text()
        assert "Not unpublished" in refusal
        assert "Stem cell therapy (stem-cell-therapy)" in refusal
        assert page.request.get(f"{base}/blog/{SLUG}").status == 200
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
