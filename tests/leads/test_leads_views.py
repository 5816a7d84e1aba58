"""The landing page and its consultation form, as a visitor (and a bot) uses them."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from core.db import db
from leads.consent import CURRENT_EMAIL_CONSENT, PRIVACY_NOTICE_VERSION
from leads.models import Consent, Lead, Submission
from studio.definitions import RESERVED_SLUGS
from tests.support.forms import SLUG, VALID, Visitor, field_error, hidden_fields


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_landing_page_carries_utm_and_referrer_into_the_form(visitor):
    response = visitor.open(
        "?utm_source=facebook&utm_medium=cpc&utm_campaign=knee-fall&utm_term=knee+pain&utm_content=ad1",
        Referer="https://www.facebook.com/",
    )
    html = response.get_data(as_text=True)
    assert 'id="signup-title"' in html
    assert visitor.hidden["utm_source"] == "facebook"
    assert visitor.hidden["utm_term"] == "knee pain"
    assert visitor.hidden["referrer"] == "https://www.facebook.com/"
    assert visitor.hidden["landing"] == SLUG
    assert visitor.hidden["started"]
    assert 'class="hp-field"' in html
    # The email consent box is unchecked until the visitor ticks it.
    assert 'id="email_consent" name="email_consent" type="checkbox" value="y">' in html


def test_valid_signup_stores_lead_submission_and_consents(visitor, app):
    visitor.open("?utm_source=facebook&utm_medium=cpc&utm_campaign=knee-fall", Referer="https://www.facebook.com/")
    response = visitor.submit(tz="America/Chicago")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/{SLUG}/thank-you#top"

    lead = db.session.scalars(select(Lead)).one()
    assert lead.email == "dana.whitfield@example.com"
    assert (lead.first_name, lead.last_name) == ("Dana", "Whitfield")
    assert lead.phone == "+13035550123"
    assert lead.interest == "knee"
    assert lead.status == "new"
    assert lead.source == "facebook"
    assert lead.landing_slug == SLUG
    assert lead.timezone == "America/Chicago"
    assert lead.email_opt_in is True
    submission = db.session.scalars(select(Submission)).one()
    assert (submission.utm_source, submission.utm_medium, submission.utm_campaign) == ("facebook", "cpc", "knee-fall")
    assert submission.referrer == "https://www.facebook.com/"
    assert submission.message == VALID["message"]
    assert submission.email_consent is True
    consents = {c.purpose: c for c in db.session.scalars(select(Consent))}
    assert consents["email_marketing"].version == CURRENT_EMAIL_CONSENT
    assert consents["email_marketing"].granted is True
    assert consents["email_marketing"].submission_id == submission.id
    assert consents["privacy_notice"].version == PRIVACY_NOTICE_VERSION

    thanks = visitor.client.get(response.headers["Location"])
    assert thanks.status_code == 200
    assert b"What happens next" in thanks.data
    assert b"Dana" not in thanks.data


def test_signup_without_email_consent_stores_no_marketing_consent(visitor):
    fields = {k: v for k, v in VALID.items() if k != "email_consent"}
    assert visitor.submit(fields).status_code == 303
    lead = db.session.scalars(select(Lead)).one()
    assert lead.email_opt_in is False
    assert [c.purpose for c in db.session.scalars(select(Consent))] == ["privacy_notice"]


def test_invalid_browser_timezone_is_ignored_and_phone_zone_used(visitor):
    assert visitor.submit(tz="Mars/Olympus_Mons").status_code == 303
    assert db.session.scalars(select(Lead)).one().timezone == "America/Denver"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("first_name", "", "Please enter your first name."),
        ("first_name", "x" * 101, "Keep it under 100 characters."),
        ("email", "", "Please enter your email address."),
        ("email", "dana@", "Enter an email address like name@example.com."),
        ("phone", "12", "Enter a phone number like"),
        ("interest", "", "Please choose the area"),
        ("interest", "brain", "Please choose the area"),
        ("preferred_contact", "carrier-pigeon", "Not a valid choice"),
        ("message", "a" * 2001, "under 2,000 characters"),
        ("privacy_ack", "", "Please confirm you have read the privacy notice."),
    ],
)
def test_each_field_error_is_shown_next_to_the_field_and_input_kept(visitor, field, value, message):
    fields = {**VALID, field: value}
    if not value:
        fields.pop(field)
    response = visitor.submit(fields)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    error_id = f"{field}-0" if field == "preferred_contact" else field
    assert message in field_error(html, field)
    assert 'class="error-summary" role="alert"' in html
    assert f'href="#{error_id}"' in html
    if field != "preferred_contact":
        assert f'aria-describedby="{field}-error"' in html
    assert 'aria-invalid="true"' in html
    # What the visitor typed is still there.
    kept = "Whitfield" if field != "last_name" else "Dana"
    assert f'value="{kept}"' in html
    assert count(Lead) == 0


def test_call_me_needs_a_phone_number(visitor):
    fields = {**VALID, "preferred_contact": "phone"}
    fields.pop("phone")
    response = visitor.submit(fields)
    assert response.status_code == 400
    assert "Add a phone number" in field_error(response.get_data(as_text=True), "preferred_contact")


def test_repeated_email_keeps_one_lead_with_two_submissions(visitor):
    assert visitor.submit().status_code == 303
    again = {**VALID, "email": " DANA.whitfield@example.COM ", "first_name": "Danielle", "interest": "hip"}
    again.pop("email_consent")
    assert visitor.submit(again).status_code == 303
    lead = db.session.scalars(select(Lead)).one()
    # The second request's answers wait on its submission for staff to accept.
    assert (lead.first_name, lead.interest) == ("Dana", "knee")
    assert (lead.submissions[-1].first_name, lead.submissions[-1].interest) == ("Danielle", "hip")
    # Not ticking the box a second time is not a withdrawal.
    assert lead.email_opt_in is True
    assert count(Submission) == 2


def test_honeypot_sees_thank_you_and_creates_nothing(visitor):
    response = visitor.submit(website="http://spam.example")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/{SLUG}/thank-you#top"
    assert count(Lead) == 0
    assert count(Submission) == 0


def test_too_fast_post_creates_nothing_until_a_person_could_have_typed(app_with, clock):
    visitor = Visitor(app_with(FORM_MIN_FILL_SECONDS=5.0).test_client())
    visitor.open()
    clock.advance(seconds=2)
    response = visitor.submit()
    assert response.status_code == 303
    assert count(Lead) == 0
    clock.advance(seconds=4)
    assert visitor.submit().status_code == 303
    assert count(Lead) == 1


def test_forged_start_time_counts_as_bot(visitor):
    assert visitor.submit(started="1000.0").status_code == 303
    assert count(Lead) == 0


def test_rate_limit_answers_429_past_the_limit(app_with):
    visitor = Visitor(app_with(SIGNUP_RATE_LIMIT="2/minute").test_client())
    assert visitor.submit().status_code == 303
    assert visitor.submit(email="second@example.com").status_code == 303
    blocked = visitor.submit(email="third@example.com")
    assert blocked.status_code == 429
    assert b"Too many requests" in blocked.data
    assert count(Submission) == 2
    # Reading the page is never limited.
    assert visitor.client.get(f"/{SLUG}").status_code == 200


def test_missing_csrf_token_is_a_friendly_400_that_keeps_the_input(visitor):
    response = visitor.submit(without=("csrf_token",))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Your form expired" in html
    assert 'value="Whitfield"' in html
    assert count(Lead) == 0
    # The re-rendered form carries a fresh token, so sending it again works.
    visitor.hidden = hidden_fields(html)
    assert visitor.submit().status_code == 303
    assert count(Lead) == 1


def test_invalid_csrf_token_is_400(visitor):
    assert visitor.submit(csrf_token="forged").status_code == 400
    assert count(Lead) == 0


def test_oversized_body_is_413(visitor):
    response = visitor.submit(message="a" * (70 * 1024))
    assert response.status_code == 413
    assert count(Lead) == 0


def test_script_in_name_is_stored_as_typed_and_rendered_escaped(visitor):
    script = "<script>alert(1)</script>"
    response = visitor.submit(first_name=script, email="bad")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert script not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    response = visitor.submit(first_name=script, last_name='"><img src=x onerror=alert(1)>')
    assert response.status_code == 303
    lead = db.session.scalars(select(Lead)).one()
    assert lead.first_name == script
    assert lead.last_name == '"><img src=x onerror=alert(1)>'
    assert b"<script>alert" not in visitor.client.get(response.headers["Location"]).data


def test_control_characters_are_removed_from_single_line_fields(visitor):
    assert (
        visitor.submit(first_name="Dana\r\nBcc: x@example.com\x00", message="line one\r\nline two\x07").status_code
        == 303
    )
    lead = db.session.scalars(select(Lead)).one()
    assert lead.first_name == "Dana  Bcc: x@example.com"
    assert lead.submissions[0].message == "line one\nline two"


def test_overlong_hidden_fields_are_cut_not_refused(visitor):
    assert visitor.submit(utm_source="s" * 500, referrer="https://x.example/" + "r" * 2000).status_code == 303
    submission = db.session.scalars(select(Submission)).one()
    assert len(submission.utm_source) == 100
    assert len(submission.referrer) == 1000


def test_malformed_bodies_never_yield_500(client, visitor):
    visitor.open()
    raw = urlencode(visitor.hidden).encode() + b"&first_name=%FF%FE&email=%00&interest=knee&interest=x"
    response = client.post(f"/{SLUG}", data=raw, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    response = client.post(f"/{SLUG}", data=b"\xff\x00{", content_type="application/json")
    assert response.status_code == 400
    assert count(Lead) == 0


@pytest.mark.parametrize("path", ["/no-such-campaign", "/no-such-campaign/thank-you", "/favicon.ico"])
def test_unknown_slugs_are_404(client, path):
    assert client.get(path).status_code == 404
    assert client.post(path).status_code in {400, 404, 405}


@pytest.mark.parametrize("slug", sorted(RESERVED_SLUGS))
def test_reserved_first_segments_never_show_a_landing_page(client, slug):
    response = client.get(f"/{slug}")
    assert response.status_code != 500
    assert b'id="signup-title"' not in response.data
    thanks = client.get(f"/{slug}/thank-you")
    assert thanks.status_code != 500
    assert b"What happens next" not in thanks.data


def test_inactive_campaign_is_404(app_with, tmp_path):
    root = tmp_path / "campaigns"
    shutil.copytree(Path("campaigns") / SLUG, root / SLUG)
    paused = root / "paused-offer"
    shutil.copytree(Path("campaigns") / SLUG, paused)
    yaml = (paused / "campaign.yaml").read_text().replace(f"slug: {SLUG}", "slug: paused-offer")
    (paused / "campaign.yaml").write_text(yaml.replace("active: true", "active: false"))
    client = app_with(CAMPAIGNS_DIR=str(root)).test_client()
    assert client.get(f"/{SLUG}").status_code == 200
    assert client.get("/paused-offer").status_code == 404
    assert client.get("/paused-offer/thank-you").status_code == 404


def test_slug_route_never_shadows_fixed_paths(app, client):
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if rule.arguments or rule.endpoint.startswith("leads."):
            continue
        path = rule.rule.rstrip("/") or "/"
        if "GET" in rule.methods and path.count("/") == 1:
            endpoint, _ = adapter.match(rule.rule, method="GET")
            assert not endpoint.startswith("leads."), rule.rule
    assert client.get("/healthz").status_code == 200
    assert client.get("/static/does-not-exist.css").status_code == 404


def test_thank_you_page_allows_a_later_visit(client, clock):
    clock.advance(timedelta(days=1))
    assert client.get(f"/{SLUG}/thank-you").status_code == 200
