"""Campaign statistics, pause and resume, previews and test sends."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from core.db import db
from mailer.models import Delivery
from nurture.models import CampaignState
from studio.registry import registry

SLUG = "stem-cell-therapy"


def _first_step(app):
    with app.app_context():
        return registry().get(SLUG).steps[0]


def test_step_counts_and_rates_come_from_deliveries(staff, app, make_lead, clock):
    step = _first_step(app)
    lead_id = make_lead()
    now = clock.now()
    rows = [
        {"sent_at": now, "delivered_at": now, "opened_at": now, "clicked_at": now},
        {"sent_at": now, "delivered_at": now, "opened_at": now},
        {"sent_at": now, "delivered_at": now, "unsubscribed_at": now},
        {"sent_at": now, "bounced_at": now, "state": "bounced"},
    ]
    with app.app_context(), db.write_transaction() as s:
        for n, extra in enumerate(rows):
            s.add(
                Delivery(
                    dedupe_key=f"stat:{n}",
                    kind="nurture",
                    lead_id=lead_id,
                    campaign_slug=SLUG,
                    step_id=step.id,
                    state=extra.pop("state", "delivered"),
                    **extra,
                )
            )
        s.add(
            Delivery(
                dedupe_key="stat:test", kind="test", campaign_slug=SLUG, step_id=step.id, sent_at=now, state="sent"
            )
        )
    html = staff.get(f"/admin/campaigns/{SLUG}").get_data(as_text=True)
    row = html[html.index(f"1. {step.id}") :].split("</tr>")[0]
    cells = step_cells(row)
    # Waiting now (the lead's enrollment is scheduled for it), sent, failed, skipped, delivered, opened...
    assert cells[:9] == ["1", "4", "0", "0", "3", "2", "1", "1", "1"]  # the test send is not counted
    assert "75.0%" in row
    assert "50.0%" in row
    assert "25.0%" in row


def step_cells(row: str) -> list[str]:
    """The numbers of a step's row, in column order (a link's text counts as its cell's number)."""
    cells = [
        re.sub(r"<[^>]+>", "", re.split(r"<br>|</td>", c.split(">", 1)[1])[0]) for c in row.split('<td class="num')[1:]
    ]
    return [re.sub(r"\D.*", "", c.strip()) for c in cells]


def test_the_campaign_page_shows_failed_and_skipped_per_step_with_a_link_to_the_failures(
    staff, app, make_lead, make_delivery
):
    step = _first_step(app)
    lead_id = make_lead()
    for n, state in enumerate(("failed", "failed", "skipped", "unknown", "sent")):
        make_delivery(f"f:{n}", lead_id=lead_id, step_id=step.id, state=state)
    html = staff.get(f"/admin/campaigns/{SLUG}").get_data(as_text=True)
    assert "Failed</th>" in html
    assert "Waiting now</th>" in html
    row = html[html.index(f"1. {step.id}") :].split("</tr>")[0]
    assert step_cells(row)[1:4] == ["0", "2", "1"]  # sent (no sent_at here), failed, skipped
    link = f"/admin/deliveries?state=failed&amp;campaign={SLUG}&amp;step={step.id}"
    assert f'<a href="{link}">2<' in row
    assert "1 unknown" in row
    listed = staff.get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert listed.count('<span class="badge delivery-failed">failed</span>') == 2
    assert "Queue all 2 failed deliveries shown here again" in listed


def test_enrollment_counts_on_the_list(staff, make_lead):
    make_lead("a@example.com")
    make_lead("b@example.com")
    html = staff.get("/admin/campaigns").get_data(as_text=True)
    assert "live: version 1" in html  # files are only import and export: the list shows the store
    row = html[html.index(f"/{SLUG}<") :].split("</tr>")[0]
    assert '<td class="num" data-label="Enrolled">2</td>' in row


def test_pause_and_resume(staff, app):
    staff.post(f"/admin/campaigns/{SLUG}/pause")
    with app.app_context():
        state = db.session.get(CampaignState, SLUG)
        assert state.paused is True
        assert state.paused_by == staff.email
    assert "Paused" in staff.get(f"/admin/campaigns/{SLUG}").get_data(as_text=True)
    staff.post(f"/admin/campaigns/{SLUG}/resume")
    with app.app_context():
        assert db.session.get(CampaignState, SLUG).paused is False


def test_preview_for_the_sample_and_a_chosen_lead(staff, app, make_lead):
    step = _first_step(app)
    lead_id = make_lead(first_name="Priya")
    page = staff.get(f"/admin/campaigns/{SLUG}/steps/{step.id}/preview")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "the sample lead" in html
    assert 'sandbox=""' in html
    chosen = staff.get(f"/admin/campaigns/{SLUG}/steps/{step.id}/preview?lead={lead_id}").get_data(as_text=True)
    assert "Rendered for <strong>Priya Whitfield</strong>" in chosen
    frame = staff.get(f"/admin/campaigns/{SLUG}/steps/{step.id}/preview.html?lead={lead_id}")
    assert frame.mimetype == "text/html"
    csp = frame.headers["Content-Security-Policy"]
    assert "sandbox" in csp
    assert "default-src 'none'" in csp
    assert "Priya" in frame.get_data(as_text=True)
    missing = staff.get(f"/admin/campaigns/{SLUG}/steps/{step.id}/preview?lead=nobody@example.com").get_data(
        as_text=True
    )
    assert "showing the sample lead" in missing
    assert staff.get(f"/admin/campaigns/{SLUG}/steps/nope/preview").status_code == 404
    assert staff.get("/admin/campaigns/nope").status_code == 404


def test_every_step_previews(staff, app):
    with app.app_context():
        steps = [s.id for c in registry().all() for s in c.steps for _ in [c]]
        pairs = [(c.slug, s.id) for c in registry().all() for s in c.steps]
    assert steps
    for slug, step_id in pairs:
        html = staff.get(f"/admin/campaigns/{slug}/steps/{step_id}/preview").get_data(as_text=True)
        assert "does not render" not in html, (slug, step_id)


def test_send_test_records_a_delivery_the_worker_sends(staff, app):
    from mailer.base import composer_for

    step = _first_step(app)
    response = staff.post(f"/admin/campaigns/{SLUG}/steps/{step.id}/test")
    assert response.status_code == 302
    with app.app_context():
        delivery = db.session.scalars(select(Delivery).where(Delivery.kind == "test")).one()
        assert (delivery.recipient, delivery.state, delivery.step_id) == (staff.email, "pending", step.id)
        assert delivery.dedupe_key.startswith("test:")
        with app.test_request_context():
            message = composer_for("test")(delivery)
        assert message.to == staff.email
        assert message.subject.startswith("[Test] ")
        from nurture.dispatch import tick

        tick()
        db.session.expire_all()
        assert db.session.get(Delivery, delivery.id).state in ("sent", "delivered")
    outbox = list(Path(app.config["OUTBOX_DIR"]).glob("*.eml"))
    assert any(staff.email in p.read_text() for p in outbox)


def test_campaign_page_writes_delays_in_words_and_links_who_is_waiting(app, marketer):
    from tests.fakes.senders import RecordingSender, run_tick, use_sender
    from tests.support import factories

    use_sender(app, RecordingSender())
    factories.make_lead(app, "waiting@example.org", first_name="Wanda")
    factories.make_lead(app, "other@example.org", first_name="Otto", landing_slug="prp-knee-osteoarthritis")
    run_tick(app)
    page = marketer.get("/admin/campaigns/stem-cell-therapy").get_data(as_text=True)
    assert "at once" in page
    assert "2 days later" in page
    assert "0:00:00" not in page
    link = "/admin/leads?campaign=stem-cell-therapy&amp;step=the-science"
    assert link in page
    listed = marketer.get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert "Wanda" in listed
    assert "Otto" not in listed
    assert "next email in stem-cell-therapy is <strong>the-science</strong>" in listed
