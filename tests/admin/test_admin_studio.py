"""The campaign studio in the admin: create, duplicate, archive, edit with problems beside their fields, conflicts,
preview, publish (never an invalid draft), history and roll back, all with plain forms."""

from __future__ import annotations

import io
import re
from html import unescape

from PIL import Image

from core.db import db
from studio import services
from studio.media import store_image
from tests.support.forms import parse_forms
from tests.support.staff import Staff

SLUG = "stem-cell-therapy"
PRP = "prp-knee-osteoarthritis"


def editor(staff: Staff, slug: str) -> tuple[str, dict[str, list[str]]]:
    """The editor page and what its form sends as it is (checkboxes only when ticked), like a browser."""
    response = staff.get(f"/admin/campaigns/{slug}/edit")
    assert response.status_code == 200, response.status_code
    html = response.get_data(as_text=True)
    return html, form_values(html, f"/admin/campaigns/{slug}/edit")


def form_values(html: str, action: str) -> dict[str, list[str]]:
    """The values the form posting to `action` would send."""
    form = next(f for f in parse_forms(html) if f.action == action and f.method == "post")
    data: dict[str, list[str]] = {}
    for field in form.fields:
        if field.type in ("checkbox", "radio") and not field.checked:
            continue
        if field.type == "submit":
            continue
        data.setdefault(field.name, []).append(field.value)
    return data


def save(staff: Staff, slug: str, data: dict[str, list[str]], action: str = "save", **changes: str):
    """Post the editor form with some fields changed and one button pressed."""
    body = {**data, **{k: [v] for k, v in changes.items()}, "action": [action]}
    return staff.client.post(f"/admin/campaigns/{slug}/edit", data=body)


def stored(app, slug: str):
    """The stored campaign (draft, live version) read fresh."""
    with app.app_context():
        record = services.get_record(db.session, slug)
        return record and {
            "draft": record.draft,
            "revision": record.draft_revision,
            "live": record.live_version,
            "archived": record.archived_at is not None,
            "versions": len(services.versions(db.session, record)),
        }


def beside(html: str, input_id: str) -> str:
    """The markup of the field holding this input: the input and what is said next to it."""
    at = html.index(f'id="{input_id}"')
    start = html.rindex('<div class="field', 0, at)
    end = html.index("</div>", at)
    return html[start:end]


def test_create_duplicate_archive_and_bring_back(marketer, app):
    page = marketer.get("/admin/campaigns").get_data(as_text=True)
    assert "live: version 1" in page
    assert "Duplicate" in page
    bad = marketer.post("/admin/campaigns/new", {"slug": "Admin", "name": "X"})
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert "&#39;Admin&#39; must be lowercase letters, digits and dashes" in html
    taken = marketer.post("/admin/campaigns/new", {"slug": SLUG, "name": "X"}).get_data(as_text=True)
    assert "is taken by another campaign (pick another slug)" in taken
    made = marketer.post("/admin/campaigns/new", {"slug": "shoulder-prp", "name": "Shoulder PRP"})
    assert made.status_code == 302
    assert made.headers["Location"].endswith("/admin/campaigns/shoulder-prp/edit")
    assert stored(app, "shoulder-prp")["live"] is None
    listing = marketer.get("/admin/campaigns").get_data(as_text=True)
    assert "Shoulder PRP" in listing
    assert "never published" in listing

    assert marketer.get(f"/admin/campaigns/{PRP}/duplicate").status_code == 200
    copied = marketer.post(f"/admin/campaigns/{PRP}/duplicate", {"slug": "hair-prp", "name": "Hair PRP"})
    assert copied.status_code == 302
    copy = stored(app, "hair-prp")
    assert copy["draft"]["steps"] == stored(app, PRP)["draft"]["steps"]
    assert copy["live"] is None
    again = marketer.post(f"/admin/campaigns/{PRP}/duplicate", {"slug": "hair-prp", "name": "Hair PRP"})
    assert again.status_code == 400
    assert "is taken by another campaign" in again.get_data(as_text=True)

    # Archive needs the CSRF token; then the page is off the site until brought back.
    assert marketer.client.post(f"/admin/campaigns/{PRP}/archive").status_code == 400
    assert marketer.post(f"/admin/campaigns/{PRP}/archive").status_code == 302
    assert stored(app, PRP)["archived"]
    assert marketer.client.get(f"/{PRP}").status_code == 404
    listing = marketer.get("/admin/campaigns").get_data(as_text=True)
    assert "Bring back" in listing
    assert marketer.post(f"/admin/campaigns/{PRP}/unarchive").status_code == 302
    assert marketer.client.get(f"/{PRP}").status_code == 200


def test_saving_with_problems_keeps_the_work_shows_each_beside_its_field_and_publishes_nothing(marketer, app):
    html, data = editor(marketer, SLUG)
    before = stored(app, SLUG)
    response = save(
        marketer, SLUG, data, **{"steps[2].delay": "2x", "steps[1].subject": "", "page.headline": "New headline"}
    )
    assert response.status_code == 302
    after = stored(app, SLUG)
    assert after["draft"]["steps"][2]["delay"] == "2x"
    assert after["draft"]["page"]["headline"] == "New headline"
    assert after["live"] == before["live"]
    assert after["versions"] == before["versions"]
    html = marketer.get(response.headers["Location"]).get_data(as_text=True)
    # The same words as `flask campaigns validate`, next to the delay input and in the summary linked to it.
    delay = beside(html, "f-steps-2-delay")
    assert "&#39;2x&#39; is not a duration" in delay
    assert 'aria-invalid="true"' in delay
    assert "is required" in beside(html, "f-steps-1-subject")
    assert 'href="#f-steps-2-delay"' in html
    assert "2 problems to fix before publishing" in html
    # The live page still shows the published headline.
    assert "New headline" not in marketer.client.get(f"/{SLUG}").get_data(as_text=True)


def test_a_save_based_on_an_old_revision_is_a_conflict_showing_both_texts(marketer, app):
    _, data = editor(marketer, SLUG)
    assert save(marketer, SLUG, data, **{"steps[0].subject": "Theirs subject"}).status_code == 302
    saved = stored(app, SLUG)
    conflict = save(marketer, SLUG, data, **{"steps[0].subject": "Mine subject"})
    assert conflict.status_code == 409
    html = conflict.get_data(as_text=True)
    assert "Not saved" in html
    assert "Theirs subject" in html
    assert "Mine subject" in html
    assert stored(app, SLUG) == saved  # nothing changed
    # The form now holds mine on their revision: saving it puts mine over theirs.
    mine = form_values(html, f"/admin/campaigns/{SLUG}/edit")
    assert mine["base_revision"] == [str(saved["revision"])]
    assert save(marketer, SLUG, mine).status_code == 302
    assert stored(app, SLUG)["draft"]["steps"][0]["subject"] == "Mine subject"


def test_publishing_an_invalid_draft_by_posting_the_form_directly_is_refused(marketer, app):
    _, data = editor(marketer, SLUG)
    save(marketer, SLUG, data, **{"steps[2].delay": "2x"})
    revision = stored(app, SLUG)["revision"]
    page = marketer.get(f"/admin/campaigns/{SLUG}/publish").get_data(as_text=True)
    assert "Cannot publish" in page
    assert "Publish now" not in page
    refused = marketer.post(f"/admin/campaigns/{SLUG}/publish", {"revision": str(revision), "note": "sneaky"})
    assert refused.status_code == 400
    assert "&#39;2x&#39; is not a duration" in refused.get_data(as_text=True)
    assert stored(app, SLUG)["versions"] == 1
    assert "2x" not in marketer.client.get(f"/{SLUG}").get_data(as_text=True)


def test_publish_shows_the_effect_then_the_landing_page_changes_at_once_and_rollback_restores_it(
    marketer, app, make_lead
):
    make_lead("enrolled@example.com")
    _, data = editor(marketer, SLUG)
    save(marketer, SLUG, data, **{"page.headline": "Knees, made new", "steps[0].subject": "Welcome, rewritten"})
    page = marketer.get(f"/admin/campaigns/{SLUG}/publish").get_data(as_text=True)
    assert "1 lead is in the sequence" in page
    assert "1 lead will get the <strong>changed</strong> email “1. Welcome, rewritten” next" in page
    assert "+Headline: Knees, made new" in unescape(page)
    revision = stored(app, SLUG)["revision"]
    done = marketer.post(f"/admin/campaigns/{SLUG}/publish", {"revision": str(revision), "note": "new headline"})
    assert done.status_code == 302
    assert stored(app, SLUG)["live"] == 2
    assert "Knees, made new" in marketer.client.get(f"/{SLUG}").get_data(as_text=True)

    history = marketer.get(f"/admin/campaigns/{SLUG}/history").get_data(as_text=True)
    assert "Version 2" in history
    assert "new headline" in history
    assert marketer.email in history
    assert "publish" in history
    assert "Roll back to version 1" in history
    assert marketer.post(f"/admin/campaigns/{SLUG}/history/1/rollback").status_code == 302
    assert stored(app, SLUG)["live"] == 3
    assert "Knees, made new" not in marketer.client.get(f"/{SLUG}").get_data(as_text=True)


def test_a_stale_publish_is_refused_with_a_clear_message(marketer, app):
    _, data = editor(marketer, SLUG)
    save(marketer, SLUG, data, **{"page.headline": "One"})
    revision = stored(app, SLUG)["revision"]
    _, data = editor(marketer, SLUG)
    save(marketer, SLUG, data, **{"page.headline": "Two"})
    stale = marketer.post(f"/admin/campaigns/{SLUG}/publish", {"revision": str(revision)}, follow_redirects=True)
    assert "someone saved this draft since you opened this page" in stale.get_data(as_text=True)
    assert stored(app, SLUG)["live"] == 1


def test_steps_are_added_moved_and_removed_with_plain_buttons(marketer, app):
    _, data = editor(marketer, PRP)
    ids = [s["id"] for s in stored(app, PRP)["draft"]["steps"]]
    assert save(marketer, PRP, data, action="add").status_code == 302
    _html, data = editor(marketer, PRP)
    assert [s["id"] for s in stored(app, PRP)["draft"]["steps"]] == [*ids, "email-3"]
    save(marketer, PRP, data, action="up:2", **{"steps[2].subject": "Added", "steps[2].body": "Hi"})
    steps = stored(app, PRP)["draft"]["steps"]
    assert [s["id"] for s in steps] == [ids[0], "email-3", ids[1]]
    assert steps[1]["subject"] == "Added"
    _, data = editor(marketer, PRP)
    save(marketer, PRP, data, action="down:0")
    assert [s["id"] for s in stored(app, PRP)["draft"]["steps"]] == ["email-3", ids[0], ids[1]]
    _, data = editor(marketer, PRP)
    save(marketer, PRP, data, action="remove:0")
    assert [s["id"] for s in stored(app, PRP)["draft"]["steps"]] == ids


def test_interest_options_are_edited_as_rows_and_steps_offer_them(marketer, app):
    html, data = editor(marketer, PRP)
    rows = len(stored(app, PRP)["draft"]["page"]["interests"])
    # One empty row more than the options, to add one without JavaScript.
    assert f'name="page.interests[{rows}].value"' in html
    assert f'name="page.interests[{rows + 1}].value"' not in html
    changes = {f"page.interests[{i}].value": "" for i in range(rows)} | {
        f"page.interests[{i}].label": "" for i in range(rows)
    }
    changes |= {f"page.interests[{rows}].value": "scalp", f"page.interests[{rows}].label": "Thinning hair"}
    save(marketer, PRP, data, **changes)
    assert stored(app, PRP)["draft"]["page"]["interests"] == [{"value": "scalp", "label": "Thinning hair"}]
    html, _ = editor(marketer, PRP)
    assert 'name="steps[0].interests" value="scalp"' in html


def test_preview_renders_the_draft_page_and_emails_and_the_timeline(marketer, app):
    _, data = editor(marketer, SLUG)
    save(marketer, SLUG, data, **{"steps[0].subject": "Draft welcome {{ first_name }}", "page.headline": "Draft head"})
    preview = marketer.get(f"/admin/campaigns/{SLUG}/draft?show=welcome&width=phone").get_data(as_text=True)
    assert "Draft welcome Alex" in preview
    assert "frame-phone" in preview
    email = marketer.client.get(f"/admin/campaigns/{SLUG}/draft/email/welcome.html")
    assert email.status_code == 200
    assert "sandbox" in email.headers["Content-Security-Policy"]
    page = marketer.client.get(f"/admin/campaigns/{SLUG}/draft/page.html")
    assert "Draft head" in page.get_data(as_text=True)
    assert "sandbox" in page.headers["Content-Security-Policy"]
    timeline = marketer.get(
        f"/admin/campaigns/{SLUG}/draft?signup=2026-11-27T18:30&tz=America/Denver&interest=knee"
    ).get_data(as_text=True)
    assert re.search(r"1\. Draft welcome \{\{ first_name \}\}|1\. Draft welcome", timeline)
    assert "Fri 27 Nov 2026, 18:30" in timeline
    bad = marketer.get(f"/admin/campaigns/{SLUG}/draft?signup=yesterday&interest=nope")
    assert bad.status_code == 200


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    for path in ("/admin/campaigns/stem-cell-therapy/edit", "/admin/campaigns/stem-cell-therapy/history"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/admin/login" in response.headers["Location"]
    response = client.post("/admin/campaigns/new", data={"slug": "x", "name": "x"})
    assert response.status_code in (302, 400)
    with client.application.app_context():
        assert services.get_record(db.session, "x") is None


def test_odd_input_never_answers_500(marketer, app):
    _, data = editor(marketer, SLUG)
    assert marketer.get("/admin/campaigns/no-such-campaign/edit").status_code == 404
    assert save(marketer, SLUG, {**data, "base_revision": ["x"]}).status_code == 400
    odd = {**data, "steps[999].id": ["x"], "page.interests[5000].value": ["y"], "send_window.days": ["funday"]}
    assert save(marketer, SLUG, odd, action="explode:9").status_code == 302
    assert save(marketer, SLUG, editor(marketer, SLUG)[1], action="remove:99").status_code == 302
    for query in ("show=nope", "tz=Nowhere/Else&signup=2026-11-27T18:30", "signup=2026-13-45T99:99", "lead=999999"):
        assert marketer.get(f"/admin/campaigns/{SLUG}/draft?{query}").status_code == 200, query
    assert marketer.client.get(f"/admin/campaigns/{SLUG}/draft/email/nope.html").status_code == 404
    flashed = marketer.post(f"/admin/campaigns/{SLUG}/history/77/rollback", follow_redirects=True)
    assert "version 77 does not exist" in flashed.get_data(as_text=True)
    assert marketer.post(f"/admin/campaigns/{SLUG}/publish", {"revision": "abc"}).status_code == 302
    assert stored(app, SLUG)["versions"] == 1


def _uploaded_image(app) -> str:
    """Store a picture as the Images screen does; returns its key."""
    buffer = io.BytesIO()
    Image.new("RGB", (1200, 800), (40, 120, 160)).save(buffer, "PNG")
    with app.app_context(), db.write_transaction() as session:
        return store_image(session, buffer.getvalue(), "clinic.png", "Our clinic's treatment room", None).key


def test_an_uploaded_picture_on_the_landing_page_is_served_in_its_sizes(marketer, app):
    key = _uploaded_image(app)
    _, data = editor(marketer, SLUG)
    body = data["page.body"][0] + f"\n\n![The treatment room](media:{key})\n"
    save(marketer, SLUG, data, **{"page.body": body})
    revision = stored(app, SLUG)["revision"]
    assert marketer.post(f"/admin/campaigns/{SLUG}/publish", {"revision": str(revision)}).status_code == 302
    page = marketer.client.get(f"/{SLUG}").get_data(as_text=True)
    img = re.search(r'<img src="/media/[^>]*alt="The treatment room"[^>]*>', page).group(0)
    assert f"/media/{key}-480." in img
    assert 'width="1200" height="800"' in img


def test_a_picture_never_uploaded_or_one_in_an_email_is_refused_beside_its_field(marketer, app):
    _, data = editor(marketer, SLUG)
    key = _uploaded_image(app)
    response = save(
        marketer,
        SLUG,
        data,
        **{
            "page.body": data["page.body"][0] + "\n\n![Gone](media:0000dead)\n",
            "steps[0].body": data["steps[0].body"][0] + f"\n\n![Room](media:{key})\n",
        },
    )
    html = unescape(marketer.get(response.headers["Location"]).get_data(as_text=True))
    assert "no uploaded image 'media:0000dead' (upload it under Images)" in beside(html, "f-page-body")
    assert "uploaded images show on landing pages and posts, not in emails" in beside(html, "f-steps-0-body")
