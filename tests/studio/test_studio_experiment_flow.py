"""A/B tests end to end in the app: subject variants per lead, headline variants per page view, results, promote."""

from __future__ import annotations

import copy
import html as html_lib
import re
from datetime import timedelta

from sqlalchemy import select, update

from core.clock import now
from core.db import db
from leads import experiments as landing_experiments
from leads.models import Lead, Submission, VariantView
from mailer.base import TemporaryError
from mailer.models import Delivery
from studio import services
from studio.registry import registry
from tests.fakes.senders import FlakySender, RecordingSender, run_tick, use_sender
from tests.support import factories
from tests.support.forms import Visitor

SLUG = "stem-cell-therapy"
B_SUBJECT = "Your consultation request: what happens next"


def publish(app, change) -> None:
    with app.app_context():
        record = services.get_record(db.session, SLUG)
        draft = copy.deepcopy(record.draft)
        change(draft)
        result = services.save_draft(db.session, record, draft, record.draft_revision, "ann@clinic.example")
        assert result.checked.problems == []
        services.publish(db.session, record, "ann@clinic.example")
        db.session.commit()


def subject_test(draft: dict) -> None:
    draft["steps"][0]["variants"] = [{"subject": B_SUBJECT, "preheader": "", "weight": 1}]


def test_each_lead_gets_one_variant_recorded_with_its_delivery_and_both_are_sent(app):
    sender = use_sender(app, RecordingSender())
    publish(app, subject_test)
    for n in range(40):
        factories.make_lead(app, f"reader{n}@example.org")
    run_tick(app)
    with app.app_context():
        rows = db.session.execute(
            select(Lead.email, Delivery.variant)
            .join(Lead, Lead.id == Delivery.lead_id)
            .where(Delivery.step_id == "welcome")
        )
        variants = {to: variant for to, variant in rows}
        step = registry().get(SLUG).step("welcome")
    names = {v.rpartition(":")[2] for v in variants.values()}
    assert names == {"a", "b"}
    for message in sender.messages:
        lead_to = message.to
        expected = step.as_variant(variants.get(lead_to)).subject
        assert message.subject == expected
        # The variant id tells the provider nothing about the lead.
        assert "knee" not in (variants.get(lead_to) or "")
    assert {m.subject for m in sender.messages} == {step.subject, B_SUBJECT}


def test_a_retry_never_switches_a_leads_variant(app, clock):
    sender = use_sender(app, FlakySender(TemporaryError("busy", retry_after=1)))
    publish(app, subject_test)
    for n in range(6):
        factories.make_lead(app, f"retry{n}@example.org")
    run_tick(app)
    with app.app_context():
        before = dict(
            db.session.execute(select(Lead.email, Delivery.variant).join(Lead, Lead.id == Delivery.lead_id)).all()
        )
    clock.advance(minutes=5)
    run_tick(app)
    run_tick(app)
    with app.app_context():
        after = dict(
            db.session.execute(select(Lead.email, Delivery.variant).join(Lead, Lead.id == Delivery.lead_id)).all()
        )
        step = registry().get(SLUG).step("welcome")
    assert before == after
    sent = {m.to: m.subject for m in sender.messages}
    assert len(sent) == 6
    for to, subject in sent.items():
        assert subject == step.as_variant(after[to]).subject


def _fake_results(app, clicks_a: int, clicks_b: int, sends: int, batch: str) -> None:
    """Deliveries of the welcome test with the given clicks, as the provider's events would leave them."""
    with app.app_context():
        step = registry().get(SLUG).step("welcome")
        moment = now()
        for name, clicks in (("a", clicks_a), ("b", clicks_b)):
            db.session.add_all(
                Delivery(
                    dedupe_key=f"fake:{batch}:{name}:{i}",
                    kind="nurture",
                    campaign_slug=SLUG,
                    step_id="welcome",
                    variant=f"{step.experiment}:{name}",
                    state="sent",
                    sent_at=moment - timedelta(days=3),
                    delivered_at=moment - timedelta(days=3),
                    clicked_at=moment - timedelta(days=2) if i < clicks else None,
                    created_at=moment,
                    updated_at=moment,
                )
                for i in range(sends)
            )
        db.session.commit()


def test_the_campaign_page_shows_each_variant_and_offers_promote_only_when_sure(app, marketer):
    publish(app, subject_test)
    _fake_results(app, 40, 50, 400, "first")
    page = marketer.get(f"/admin/campaigns/{SLUG}").get_data(as_text=True)
    assert "A/B tests" in page
    assert B_SUBJECT in page
    assert "could still be luck" in page
    assert "Promote" not in page
    refused = marketer.post(f"/admin/campaigns/{SLUG}/experiments/welcome/promote", follow_redirects=True)
    assert "not sure of a winner yet" in refused.get_data(as_text=True)

    _fake_results(app, 400, 560, 4000, "more")  # a clear lift on much more data
    page = marketer.get(f"/admin/campaigns/{SLUG}").get_data(as_text=True)
    assert "sure enough to act on" in page
    assert "Promote B" in page
    done = marketer.post(f"/admin/campaigns/{SLUG}/experiments/welcome/promote", follow_redirects=True)
    assert "Variant B promoted" in done.get_data(as_text=True)
    with app.app_context():
        welcome = registry().get(SLUG).step("welcome")
        assert welcome.subject == B_SUBJECT
        assert welcome.variants == ()
        record = services.get_record(db.session, SLUG)
        assert record.draft["steps"][0]["variants"] == []


def test_the_preview_and_the_test_send_show_every_variant(app, marketer):
    publish(app, subject_test)
    preview = marketer.get(f"/admin/campaigns/{SLUG}/steps/welcome/preview?variant=b").get_data(as_text=True)
    assert f"<dd>{html_lib.escape(B_SUBJECT)}</dd>" in preview
    assert "Variant A:" in preview
    marketer.post(f"/admin/campaigns/{SLUG}/steps/welcome/test")
    with app.app_context():
        tests = db.session.scalars(select(Delivery.variant).where(Delivery.kind == "test")).all()
    assert sorted(v.rpartition(":")[2] for v in tests) == ["a", "b"]


def headline_test(draft: dict) -> None:
    draft["page"]["variants"] = [{"headline": "Heal with your own cells", "intro": "", "weight": 1}]


def test_headline_variants_are_carried_by_a_signed_field_and_counted_per_view(app, client):
    publish(app, headline_test)
    own = None
    with app.app_context():
        own = registry().get(SLUG).page.headline
    seen = set()
    for _ in range(30):
        page = client.get(f"/{SLUG}").get_data(as_text=True)
        seen.add("Heal with your own cells" in page)
    assert seen == {True, False}
    assert own
    with app.app_context():
        landing_experiments.counter().flush()
        views = db.session.execute(select(VariantView.variant, VariantView.views)).all()
    assert sum(v for _, v in views) == 30
    assert {variant.rpartition(":")[2] for variant, _ in views} == {"a", "b"}

    visitor = Visitor(client)
    response = visitor.open()
    shown_b = "Heal with your own cells" in response.get_data(as_text=True)
    assert visitor.hidden["landing_variant"]
    assert visitor.submit().status_code == 303
    with app.app_context():
        recorded = db.session.scalar(select(Submission.landing_variant))
    assert recorded.rpartition(":")[2] == ("b" if shown_b else "a")


def test_a_forged_or_stale_variant_field_is_ignored_never_an_error(app, client):
    publish(app, headline_test)
    visitor = Visitor(client, SLUG)
    visitor.open()
    assert visitor.submit(landing_variant="not-signed").status_code == 303
    forged = re.sub(r".$", "x", visitor.hidden["landing_variant"])
    assert Visitor(client).submit(landing_variant=forged, email="forged@example.org").status_code == 303
    with app.app_context():
        assert db.session.scalars(select(Submission.landing_variant)).all() == [None, None]


def test_simulate_names_the_variant_a_given_lead_gets(app, runner):
    publish(app, subject_test)
    factories.make_lead(app, "sim@example.org")
    result = runner.invoke(args=["campaigns", "simulate", SLUG, "--lead", "sim@example.org"])
    assert result.exit_code == 0, result.output
    assert re.search(r"this lead gets variant [AB]: ", result.output)
    with app.app_context():
        db.session.execute(update(Delivery).values(variant=None))
        db.session.commit()
