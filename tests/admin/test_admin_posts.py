"""The blog posts screens: write, see problems next to fields, preview, publish now or at a time in the clinic's
zone, unpublish (refused while campaigns link), history with changes and roll back."""

from __future__ import annotations

import html as html_lib

from tests.support.forms import field_error, parse_forms

LINKED = "stem-cells-or-prp-which-fits-your-injury"


def fields_of(page_html: str, slug: str = "knee-pain-in-winter") -> dict[str, str]:
    """The edit form's values as a browser would send them."""
    form = next(f for f in parse_forms(page_html) if f.action == f"/admin/posts/{slug}")
    return {f.name: f.value for f in form.fields if f.name}


def error(page_html: str, field_id: str) -> str | None:
    """The words shown next to a field, as the reader sees them."""
    found = field_error(page_html, field_id)
    return html_lib.unescape(found) if found else found


def start(staff, slug: str = "knee-pain-in-winter", title: str = "Knee pain in winter"):
    response = staff.post("/admin/posts", {"slug": slug, "title": title})
    assert response.status_code == 302, response.status_code
    return staff.get(f"/admin/posts/{slug}")


def save(staff, slug: str, **changes: str):
    page = staff.get(f"/admin/posts/{slug}").get_data(as_text=True)
    data = fields_of(page, slug) | changes
    data.pop("csrf_token", None)
    return staff.post(f"/admin/posts/{slug}", data, follow_redirects=True)


def test_a_new_draft_shows_its_problems_next_to_the_fields_and_is_not_on_the_site(staff, client):
    page = start(staff).get_data(as_text=True)
    assert error(page, "description") == "is required in the front matter"
    assert error(page, "body") == "the post has no text"
    saved = save(staff, "knee-pain-in-winter", date="someday", image_src="img/none.svg", image_alt="A knee")
    html = saved.get_data(as_text=True)
    assert "Draft saved." in html
    assert error(html, "date") == "'someday' is not a date (use YYYY-MM-DD)"
    assert error(html, "image_src") == "file 'img/none.svg' not found under static/"
    refused = staff.post("/admin/posts/knee-pain-in-winter/publish", {"when": "now"}, follow_redirects=True)
    assert "Not published" in refused.get_data(as_text=True)
    assert client.get("/blog/knee-pain-in-winter").status_code == 404


def write_valid(staff, slug: str = "knee-pain-in-winter") -> None:
    start(staff, slug)
    save(
        staff,
        slug,
        description="Why knees ache more in the cold and what helps, in plain words.",
        tags="knee, winter care",
        body="## Why\n\nCold stiffens the joint.\n\n<b>not bold</b>\n",
    )


def test_publish_now_puts_the_post_on_the_site(staff, client):
    write_valid(staff)
    done = staff.post("/admin/posts/knee-pain-in-winter/publish", {"when": "now"}, follow_redirects=True)
    assert "Version 1 is live at /blog/knee-pain-in-winter" in done.get_data(as_text=True)
    page = client.get("/blog/knee-pain-in-winter").get_data(as_text=True)
    assert "Cold stiffens the joint." in page
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page


def test_scheduling_in_the_clinics_time_zone(staff, client, clock):
    write_valid(staff)
    # The clock is 09:00 in Denver (16:00 UTC): 09:30 Denver is 16:30 UTC.
    day = clock.now().date().isoformat()
    done = staff.post(
        "/admin/posts/knee-pain-in-winter/publish", {"when": "later", "day": day, "at": "09:30"}, follow_redirects=True
    )
    assert "goes live on" in done.get_data(as_text=True)
    assert "scheduled for" in staff.get("/admin/posts").get_data(as_text=True)
    assert client.get("/blog/knee-pain-in-winter").status_code == 404
    clock.advance(minutes=29)
    assert client.get("/blog/knee-pain-in-winter").status_code == 404
    clock.advance(minutes=1)
    assert client.get("/blog/knee-pain-in-winter").status_code == 200
    past = staff.post(
        "/admin/posts/knee-pain-in-winter/publish", {"when": "later", "day": day, "at": "08:00"}, follow_redirects=True
    )
    assert "has passed" in past.get_data(as_text=True)


def test_unpublish_is_refused_naming_the_campaigns_that_link_the_post(staff, client):
    page = staff.get(f"/admin/posts/{LINKED}").get_data(as_text=True)
    assert "PRP for knee osteoarthritis (prp-knee-osteoarthritis)" in page
    refused = staff.post(f"/admin/posts/{LINKED}/unpublish", follow_redirects=True).get_data(as_text=True)
    assert "Not unpublished" in refused
    assert "Stem cell therapy (stem-cell-therapy)" in refused
    assert client.get(f"/blog/{LINKED}").status_code == 200


def test_unpublish_takes_an_unlinked_post_off_the_site(staff, client):
    write_valid(staff)
    staff.post("/admin/posts/knee-pain-in-winter/publish", {"when": "now"})
    staff.get("/admin/posts/knee-pain-in-winter")
    done = staff.post("/admin/posts/knee-pain-in-winter/unpublish", follow_redirects=True)
    assert "off the site" in done.get_data(as_text=True)
    assert client.get("/blog/knee-pain-in-winter").status_code == 404


def test_preview_shows_the_draft_at_two_widths(staff):
    write_valid(staff)
    page = staff.get("/admin/posts/knee-pain-in-winter/preview").get_data(as_text=True)
    assert 'class="preview-phone"' in page
    assert 'class="preview-desktop"' in page
    frame = staff.get("/admin/posts/knee-pain-in-winter/preview/page").get_data(as_text=True)
    assert "Cold stiffens the joint." in frame
    assert "Book a free consultation" in frame


def test_history_shows_changes_and_rolls_back(staff, client):
    write_valid(staff)
    staff.post("/admin/posts/knee-pain-in-winter/publish", {"when": "now"})
    save(staff, "knee-pain-in-winter", title="Knee pain when it is cold")
    staff.post("/admin/posts/knee-pain-in-winter/publish", {"when": "now"})
    assert "Knee pain when it is cold" in client.get("/blog/knee-pain-in-winter").get_data(as_text=True)
    history = staff.get("/admin/posts/knee-pain-in-winter/history?version=2").get_data(as_text=True)
    assert "+title: Knee pain when it is cold" in html_lib.unescape(history)
    assert "-title: Knee pain in winter" in html_lib.unescape(history)
    staff.post("/admin/posts/knee-pain-in-winter/rollback/1", follow_redirects=True)
    assert "<h1>Knee pain in winter</h1>" in client.get("/blog/knee-pain-in-winter").get_data(as_text=True)


def test_two_people_saving_the_same_draft_get_a_conflict(staff):
    start(staff)
    page = staff.get("/admin/posts/knee-pain-in-winter").get_data(as_text=True)
    stale = fields_of(page)
    stale.pop("csrf_token", None)
    save(staff, "knee-pain-in-winter", title="First")
    conflict = staff.post("/admin/posts/knee-pain-in-winter", stale | {"title": "Second"})
    assert conflict.status_code == 409
    assert "after you opened it" in conflict.get_data(as_text=True)


def test_signed_out_visitors_cannot_reach_the_posts_screens(client):
    assert client.get("/admin/posts").status_code == 302
    assert client.post("/admin/posts/x/unpublish").status_code in (302, 400)


def test_the_list_and_the_editor_say_when_saved_changes_are_not_published_yet(staff, client):
    write_valid(staff)
    staff.post("/admin/posts/knee-pain-in-winter/publish", {"when": "now"}, follow_redirects=True)
    assert "unpublished changes" not in staff.get("/admin/posts").get_data(as_text=True)
    save(staff, "knee-pain-in-winter", title="Knee pain when it is cold")
    assert "live (version 1), unpublished changes in the draft" in staff.get("/admin/posts").get_data(as_text=True)
    editor = staff.get("/admin/posts/knee-pain-in-winter").get_data(as_text=True)
    assert "unpublished changes in the draft" in editor
    assert "Knee pain in winter" in client.get("/blog/knee-pain-in-winter").get_data(as_text=True)
    staff.post("/admin/posts/knee-pain-in-winter/publish", {"when": "now"}, follow_redirects=True)
    assert "unpublished changes" not in staff.get("/admin/posts").get_data(as_text=True)
