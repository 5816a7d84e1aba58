"""The campaign store: drafts, published versions, conflicts, round trips through files, live without a restart."""

from __future__ import annotations

import copy
import shutil

import pytest

from core.db import db
from studio import services
from studio.document import validate_document
from studio.files import read_folder
from studio.registry import registry
from tests.support.content import CAMPAIGNS
from tests.support.database import fresh_app

SLUG = "stem-cell-therapy"


def record(slug: str = SLUG):
    """The stored campaign (in the current app context)."""
    found = services.get_record(db.session, slug)
    assert found is not None
    return found


def test_export_then_import_is_a_round_trip_with_no_change(app, runner, tmp_path):
    out = tmp_path / "exported"
    result = runner.invoke(args=["campaigns", "export", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 campaign(s) exported" in result.output
    with app.app_context():
        live = {r.slug: services.live_document(db.session, r) for r in services.records(db.session)}
    for slug, document in live.items():
        exported, problems, _ = read_folder(out / slug)
        assert problems == []
        assert services.normalized(exported) == document
    again = runner.invoke(args=["campaigns", "import", str(out), "--publish"])
    assert again.exit_code == 0, again.output
    assert f"{SLUG}: unchanged" in again.output
    with app.app_context():
        assert len(services.versions(db.session, record())) == 1  # nothing new was published
    # The export of the export is byte for byte the same.
    second = tmp_path / "second"
    runner.invoke(args=["campaigns", "export", str(second)])
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        assert path.read_bytes() == (second / path.relative_to(out)).read_bytes(), path


def test_import_reports_every_problem_and_stores_nothing(app, runner, tmp_path):
    broken = tmp_path / "campaigns"
    shutil.copytree(CAMPAIGNS, broken)
    yaml_path = broken / SLUG / "campaign.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("delay: 3d", "delay: 2x", 1))
    email = broken / SLUG / "emails" / "02-the-science.md"
    email.write_text(email.read_text().replace("subject:", "subjekt:", 1))
    result = runner.invoke(args=["campaigns", "import", str(broken), "--publish"])
    assert result.exit_code == 1
    # Both problems at once: the one in the settings does not hide the one in an email.
    assert "campaign.yaml: steps[2].delay: '2x' is not a duration" in result.output
    assert "02-the-science.md: subjekt: is not a setting campaigns know" in result.output
    assert "02-the-science.md: subject: is required" in result.output
    with app.app_context():
        assert len(services.versions(db.session, record())) == 1


def test_two_people_saving_the_same_draft_get_a_conflict_never_a_silent_overwrite(app):
    with app.app_context():
        base = record().draft_revision
        mine = copy.deepcopy(record().draft)
        theirs = copy.deepcopy(record().draft)
        mine["steps"][0]["subject"] = "Mine"
        theirs["steps"][0]["subject"] = "Theirs"
        first = services.save_draft(db.session, record(), mine, base, "ann@clinic.example")
        db.session.commit()
        assert first.conflict is None
        second = services.save_draft(db.session, record(), theirs, base, "bob@clinic.example")
        db.session.commit()
        assert second.conflict is not None
        assert second.conflict.theirs["steps"][0]["subject"] == "Mine"
        assert second.conflict.mine["steps"][0]["subject"] == "Theirs"
        assert second.conflict.theirs_by == "ann@clinic.example"
        assert record().draft["steps"][0]["subject"] == "Mine"
        # Bob saves again on top of Ann's revision: now it is his.
        again = services.save_draft(db.session, record(), theirs, second.conflict.revision, "bob@clinic.example")
        db.session.commit()
        assert again.conflict is None
        assert record().draft["steps"][0]["subject"] == "Theirs"


def test_an_invalid_draft_is_saved_but_cannot_be_published_and_the_site_keeps_the_live_version(app, client):
    with app.app_context():
        draft = copy.deepcopy(record().draft)
        draft["steps"][1]["delay"] = "2x"
        draft["page"]["headline"] = "A broken draft"
        services.save_draft(db.session, record(), draft, record().draft_revision, "ann@clinic.example")
        db.session.commit()
        with pytest.raises(services.InvalidDraft) as refused:
            services.publish(db.session, record(), "ann@clinic.example")
        db.session.rollback()
        assert [str(p) for p in refused.value.problems] == [
            "steps[1].delay: '2x' is not a duration (use 0, 30m, 36h, 2d or 1w)"
        ]
        assert len(services.versions(db.session, record())) == 1
    page = client.get(f"/{SLUG}").get_data(as_text=True)
    assert "A broken draft" not in page


def test_a_publish_is_live_at_once_here_survives_a_restart_and_rolls_back(app, client, make_config):
    with app.app_context():
        draft = copy.deepcopy(record().draft)
        draft["page"]["headline"] = "Cells that help you heal"
        services.save_draft(db.session, record(), draft, record().draft_revision, "ann@clinic.example")
        services.publish(db.session, record(), "ann@clinic.example", note="new headline")
        db.session.commit()
    assert "Cells that help you heal" in client.get(f"/{SLUG}").get_data(as_text=True)

    # Another process (a new app on the same database) serves the same version.
    other = create_other_app(make_config)
    assert "Cells that help you heal" in other.test_client().get(f"/{SLUG}").get_data(as_text=True)

    with app.app_context():
        [v2, v1] = services.versions(db.session, record())
        assert (v2.number, v2.published_by, v2.note) == (2, "ann@clinic.example", "new headline")
        readable = services.diff(v1.document, v2.document, "version 1", "version 2")
        assert "+Headline: Cells that help you heal" in readable
        services.rollback(db.session, record(), 1, "bob@clinic.example")
        db.session.commit()
        assert record().live_version == 3
        actions = [(e.action, e.actor) for e in services.audit(db.session, SLUG)]
        assert ("rollback", "bob@clinic.example") in actions
        assert ("publish", "ann@clinic.example") in actions
        assert ("save", "ann@clinic.example") in actions
    assert "Cells that help you heal" not in client.get(f"/{SLUG}").get_data(as_text=True)


def create_other_app(make_config):
    """A second app on the same database, as another web process would be (its tables are not emptied)."""
    from app import create_app

    return create_app(make_config())


def test_a_new_campaign_is_served_without_a_restart_and_archiving_takes_it_down(app, client):
    with app.app_context():
        source = record("prp-knee-osteoarthritis")
        created = services.duplicate(db.session, source, "hair-restoration-prp", "PRP for hair", "ann@clinic.example")
        draft = copy.deepcopy(created.draft)
        draft["active"] = True
        draft["page"]["headline"] = "PRP for thinning hair"
        draft["page"]["interests"] = [
            {"value": "thinning", "label": "Thinning hair"},
            {"value": "hairline", "label": "Receding hairline"},
        ]
        services.save_draft(db.session, created, draft, created.draft_revision, "ann@clinic.example")
        db.session.commit()
    assert client.get("/hair-restoration-prp").status_code == 404  # a draft is not live
    with app.app_context():
        services.publish(db.session, record("hair-restoration-prp"), "ann@clinic.example")
        db.session.commit()
    page = client.get("/hair-restoration-prp")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "PRP for thinning hair" in html
    assert "Receding hairline" in html
    assert ">Knee<" not in html  # a hair page never asks about knees
    with app.app_context():
        services.archive(db.session, record("hair-restoration-prp"), "ann@clinic.example")
        db.session.commit()
    assert client.get("/hair-restoration-prp").status_code == 404


def test_slugs_the_site_owns_or_another_campaign_has_are_refused(app):
    with app.app_context():
        assert "reserved" in services.slug_problem(db.session, "admin")
        assert "taken" in services.slug_problem(db.session, SLUG)
        assert "lowercase" in services.slug_problem(db.session, "Hair PRP")
        assert services.slug_problem(db.session, "hair-restoration-prp") is None


def test_every_problem_of_a_document_is_reported_at_once_with_its_field():
    exported, _, _ = read_folder(CAMPAIGNS / SLUG)
    document = copy.deepcopy(exported)
    document["name"] = ""
    document["send_window"]["start"] = "25:00"
    document["page"]["title"] = ""
    document["steps"][0]["subject"] = "Hi {{ first_nme }}"
    document["steps"][2]["delay"] = "2x"
    document["steps"][3]["interests"] = ["hair"]
    checked = validate_document(document, set())
    fields = [p.field for p in checked.problems]
    assert checked.campaign is None
    for field in (
        "name",
        "send_window.start",
        "page.title",
        "steps[0].subject",
        "steps[2].delay",
        "steps[3].interests",
    ):
        assert field in fields, (field, fields)
    assert "steps[3].body" in fields  # its blog: link names no published post (none were given)


@pytest.mark.parametrize("delay", ["0", "0m", "1w", "90m", "36h", "2d"])
def test_delays_accept_zero_and_weeks(delay):
    exported, _, _ = read_folder(CAMPAIGNS / SLUG)
    exported["steps"][1]["delay"] = delay
    assert validate_document(exported).problems == []


def test_the_registry_checks_the_database_at_most_once_per_interval(app, make_config, monkeypatch):
    """No query per page view: between checks the process answers from what it holds."""
    from studio import registry as registry_module

    calls = []
    real = registry_module.LiveRegistry.refresh
    monkeypatch.setattr(registry_module.LiveRegistry, "refresh", lambda self: calls.append(1) or real(self))
    client = app.test_client()
    for _ in range(20):
        assert client.get(f"/{SLUG}").status_code == 200
    assert len(calls) <= 1


def test_a_fresh_database_serves_no_campaign_until_one_is_imported(make_config, runner):
    app = next(fresh_app(make_config(), publish=False))
    with app.app_context():
        assert registry().all() == []
    result = app.test_cli_runner().invoke(args=["campaigns", "import", "--publish", "--if-new"])
    assert result.exit_code == 0, result.output
    assert f"{SLUG}: published" in result.output
    with app.app_context():
        assert {c.slug for c in registry().active()} == {SLUG, "prp-knee-osteoarthritis"}
    # A second start leaves what the admin changed alone.
    with app.app_context():
        draft = copy.deepcopy(record().draft)
        draft["name"] = "Changed in the admin"
        services.save_draft(db.session, record(), draft, record().draft_revision, "ann@clinic.example")
        services.publish(db.session, record(), "ann@clinic.example")
        db.session.commit()
    again = app.test_cli_runner().invoke(args=["campaigns", "import", "--publish", "--if-new"])
    assert f"{SLUG}: already in the database, left as it is" in again.output
    with app.app_context():
        assert registry().get(SLUG).name == "Changed in the admin"


def test_blog_links_work_on_landing_pages_too(app, client):
    with app.app_context():
        draft = copy.deepcopy(record().draft)
        draft["page"]["body"] += "\n\nRead [how it compares](blog:regenerative-medicine-vs-conventional-treatments).\n"
        services.save_draft(db.session, record(), draft, record().draft_revision, "ann@clinic.example")
        services.publish(db.session, record(), "ann@clinic.example")
        db.session.commit()
        draft["page"]["body"] += "\n[gone](blog:no-such-post)\n"
        checked = services.check(draft)
    html = client.get(f"/{SLUG}").get_data(as_text=True)
    assert 'href="/blog/regenerative-medicine-vs-conventional-treatments"' in html
    assert 'href="blog:' not in html
    assert [str(p) for p in checked.problems] == ["page.body: blog:no-such-post: no such blog post"]
