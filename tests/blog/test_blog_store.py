"""Posts in the database: scheduled publishing, unpublishing guarded by live campaigns, history and roll back,
the Atom feed and tag pages, files as import and export."""

from __future__ import annotations

import copy
import time
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

from app import create_app
from core.db import db
from studio import post_services, services
from studio.post_registry import blog
from studio.post_services import PostLinked
from studio.services import InvalidDraft

ATOM = "{http://www.w3.org/2005/Atom}"
LINKED = "stem-cells-or-prp-which-fits-your-injury"


def new_post(slug: str = "winter-knee-care", title: str = "Winter knee care") -> dict:
    return {
        "slug": slug,
        "title": title,
        "description": "How to keep a sore knee moving through the cold months, in plain words.",
        "date": "2026-11-20",
        "author": "NexGenEsis clinical team",
        "tags": ["knee", "winter care"],
        "treatment": "prp-knee-osteoarthritis",
        "body": "Keep moving, gently.\n\n<script>alert(1)</script>\n",
    }


def store_post(app, doc: dict, at=None) -> None:
    with app.app_context(), db.write_transaction() as session:
        record = post_services.create_post(session, doc, "ann@clinic.example")
        post_services.publish_post(session, record, "ann@clinic.example", at=at)


def listed(client) -> dict[str, bool]:
    """Where the post shows: its page, the index, the sitemap, the feed, its tag page."""
    feed = ET.fromstring(client.get("/blog/feed.xml").data)  # noqa: S314 - our own feed
    return {
        "page": client.get("/blog/winter-knee-care").status_code == 200,
        "index": "/blog/winter-knee-care" in client.get("/blog/").text,
        "sitemap": "/blog/winter-knee-care" in client.get("/sitemap.xml").text,
        "feed": any(e.findtext(f"{ATOM}id").endswith("/blog/winter-knee-care") for e in feed.iter(f"{ATOM}entry")),
        "tag": client.get("/blog/tag/winter-care").status_code == 200,
    }


def test_a_scheduled_post_appears_everywhere_only_once_its_time_has_come(app, client, clock):
    store_post(app, new_post(), at=clock.now() + timedelta(minutes=2))
    assert set(listed(client).values()) == {False}
    clock.advance(minutes=1, seconds=59)
    assert set(listed(client).values()) == {False}
    clock.advance(seconds=1)  # no publish, no restart: the clock passing the time is enough
    assert set(listed(client).values()) == {True}
    with app.app_context():
        assert "winter-knee-care" in services.posts()  # campaigns may link to it now


def test_a_scheduled_edit_replaces_the_live_version_at_its_time(app, client, clock):
    store_post(app, new_post())
    changed = new_post(title="Winter knee care, updated")
    with app.app_context(), db.write_transaction() as session:
        record = post_services.get_post(session, "winter-knee-care")
        post_services.save_post_draft(session, record, changed, record.draft_revision, "ann@clinic.example")
        post_services.publish_post(session, record, "ann@clinic.example", at=clock.now() + timedelta(hours=1))
    assert "<h1>Winter knee care</h1>" in client.get("/blog/winter-knee-care").text
    clock.advance(hours=1)
    assert "<h1>Winter knee care, updated</h1>" in client.get("/blog/winter-knee-care").text


def test_a_publish_elsewhere_is_served_within_the_refresh_interval_without_a_restart(app, make_config, clock):
    other = create_app(make_config(CONTENT_REFRESH_SECONDS=0.2))  # a second web process on the same database
    visitor = other.test_client()
    assert visitor.get("/blog/winter-knee-care").status_code == 404
    store_post(app, new_post())
    time.sleep(0.3)
    assert visitor.get("/blog/winter-knee-care").status_code == 200


def test_unpublishing_a_post_a_live_campaign_links_is_refused_with_the_campaign_names(app, client):
    with app.app_context(), db.write_transaction() as session:
        record = post_services.get_post(session, LINKED)
        with pytest.raises(PostLinked) as refused:
            post_services.unpublish_post(session, record, "ann@clinic.example")
    message = str(refused.value)
    assert "PRP for knee osteoarthritis (prp-knee-osteoarthritis)" in message
    assert "Stem cell therapy (stem-cell-therapy)" in message
    assert client.get(f"/blog/{LINKED}").status_code == 200  # still on the site


def test_an_unlinked_post_can_be_unpublished_and_campaigns_then_cannot_link_it(app, client):
    store_post(app, new_post())
    with app.app_context(), db.write_transaction() as session:
        post_services.unpublish_post(session, post_services.get_post(session, "winter-knee-care"), "ann@clinic.example")
    assert client.get("/blog/winter-knee-care").status_code == 404
    with app.app_context():
        record = services.get_record(db.session, "stem-cell-therapy")
        draft = copy.deepcopy(record.draft)
        draft["steps"][0]["body"] += "\n\n[Winter care](blog:winter-knee-care)\n"
        services.save_draft(db.session, record, draft, record.draft_revision, "ann@clinic.example")
        with pytest.raises(InvalidDraft) as refused:
            services.publish(db.session, record, "ann@clinic.example")
        db.session.rollback()
    assert "blog:winter-knee-care: no such blog post" in str(refused.value.problems)


def test_a_campaign_can_link_a_post_once_it_is_published(app):
    store_post(app, new_post())
    with app.app_context():
        record = services.get_record(db.session, "stem-cell-therapy")
        draft = copy.deepcopy(record.draft)
        draft["steps"][0]["body"] += "\n\n[Winter care](blog:winter-knee-care)\n"
        services.save_draft(db.session, record, draft, record.draft_revision, "ann@clinic.example")
        services.publish(db.session, record, "ann@clinic.example")
        db.session.commit()
        with pytest.raises(PostLinked):
            post_services.unpublish_post(db.session, post_services.get_post(db.session, "winter-knee-care"), "x")


def test_history_diff_and_roll_back(app, client):
    store_post(app, new_post())
    with app.app_context(), db.write_transaction() as session:
        record = post_services.get_post(session, "winter-knee-care")
        post_services.publish_post(session, record, "bob@clinic.example", document=new_post(title="Second title"))
    assert "<h1>Second title</h1>" in client.get("/blog/winter-knee-care").text
    with app.app_context(), db.write_transaction() as session:
        record = post_services.get_post(session, "winter-knee-care")
        first, second = reversed(post_services.post_versions(session, record))
        diff = post_services.diff_posts(first.document, second.document)
        assert "-title: Winter knee care" in diff
        assert "+title: Second title" in diff
        post_services.rollback_post(session, record, 1, "ann@clinic.example")
        assert [v.number for v in post_services.post_versions(session, record)] == [3, 2, 1]
        actions = [entry.action for entry in services.audit(session, "post:winter-knee-care")]
    assert actions[:2] == ["rollback", "publish"]
    assert "<h1>Winter knee care</h1>" in client.get("/blog/winter-knee-care").text


def test_a_post_with_problems_is_refused_with_the_file_words(app):
    bad = new_post() | {"date": "2026-13-01", "title": ""}
    with app.app_context(), db.write_transaction() as session:
        record = post_services.create_post(session, bad, "ann@clinic.example")
        with pytest.raises(post_services.InvalidPost) as refused:
            post_services.publish_post(session, record, "ann@clinic.example")
    problems = {str(p) for p in refused.value.problems}
    assert "title: is required in the front matter" in problems
    assert "date: '2026-13-01' is not a date (use YYYY-MM-DD)" in problems


def test_the_feed_is_well_formed_atom_with_the_newest_posts(client):
    response = client.get("/blog/feed.xml")
    assert response.status_code == 200
    assert response.mimetype == "application/atom+xml"
    feed = ET.fromstring(response.data)  # noqa: S314 - our own feed
    assert feed.tag == f"{ATOM}feed"
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 3
    assert entries[0].findtext(f"{ATOM}title") == "Stem Cells or PRP: Which Fits Your Injury?"
    for entry in entries:
        assert entry.findtext(f"{ATOM}updated").endswith("Z")
        assert "<p>" in entry.findtext(f"{ATOM}content")  # HTML as escaped text, not markup
    assert 'href="/blog/feed.xml"' in client.get("/").text


def test_tag_pages_list_the_posts_of_a_topic(client):
    html = client.get("/blog/tag/prp").text
    assert "Posts about PRP" in html
    assert "/blog/stem-cells-or-prp-which-fits-your-injury" in html
    assert client.get("/blog/tag/no-such-topic").status_code == 404
    assert "/blog/tag/prp" in client.get("/blog/stem-cells-or-prp-which-fits-your-injury").text


def test_export_then_import_is_a_round_trip_with_no_change(app, runner, tmp_path):
    out = tmp_path / "exported"
    result = runner.invoke(args=["blog", "export", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 post(s) exported" in result.output
    again = runner.invoke(args=["blog", "import", str(out), "--publish"])
    assert again.exit_code == 0, again.output
    assert again.output.count(": unchanged") == 3
    second = tmp_path / "second"
    runner.invoke(args=["blog", "export", str(second)])
    for path in sorted(out.glob("*.md")):
        assert path.read_bytes() == (second / path.name).read_bytes(), path
    with app.app_context():
        assert {p.slug for p in blog().posts} == {path.stem for path in out.glob("*.md")}
