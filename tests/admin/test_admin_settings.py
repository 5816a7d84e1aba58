"""Site settings: admins change the clinic's details and the site's words; the environment stays the default, the
saved value wins on pages and in emails without a restart, every change is audited."""

from __future__ import annotations

import html as html_lib
import time

from app import create_app
from core.db import db
from mailer.compose import render_parts
from studio.services import audit
from tests.support.forms import field_error, parse_forms
from tests.support.staff import login


def current_values(staff) -> dict[str, str]:
    page = staff.get("/admin/settings").get_data(as_text=True)
    form = next(f for f in parse_forms(page) if f.action == "/admin/settings")
    return {f.name: f.value for f in form.fields if f.name and f.name != "csrf_token"}


def save(staff, **changes: str):
    return staff.post("/admin/settings", current_values(staff) | changes, follow_redirects=True)


def email_footer(app) -> str:
    with app.test_request_context():
        from flask import current_app

        current_app.extensions["settings"].current()
        rendered = render_parts(
            subject="Hello",
            preheader="",
            markdown="Body text.",
            context={},
            campaign_slug="stem-cell-therapy",
            step_id="welcome",
            reason="You asked about a consultation.",
            unsubscribe=lambda: "https://example.test/u",
            address=(current_app.config.get("CLINIC_POSTAL_ADDRESS") or "").strip(),
            where="test",
        )
    return rendered.text


def test_saved_settings_show_on_pages_and_in_email_footers_and_are_audited(app, staff, client):
    assert "100 Example Ave" in client.get("/").get_data(as_text=True)  # the environment's default
    done = save(
        staff,
        CLINIC_NAME="Front Range Regenerative",
        CLINIC_POSTAL_ADDRESS="Front Range Regenerative, 9 Elm St, Boulder, CO 80302",
        HOME_HEADLINE="Hair restoration and joint care",
        HOME_INTRO="Two kinds of care, one clinic.",
        MEDICAL_DISCLAIMER="General information only; a clinician decides what suits you.",
        PRIVACY_NOTICE="## Short version\n\nWe keep your details to answer you. <script>x</script>",
    )
    assert "Settings saved" in done.get_data(as_text=True)
    home = client.get("/").get_data(as_text=True)
    assert '<h1 id="home-title">Hair restoration and joint care</h1>' in home
    assert "Two kinds of care, one clinic." in home
    assert "9 Elm St, Boulder" in home
    assert "General information only; a clinician decides what suits you." in home
    assert "joints, tendons and the spine</h1>" not in home
    privacy = client.get("/privacy").get_data(as_text=True)
    assert "<h2>Short version</h2>" in privacy
    assert "&lt;script&gt;" in privacy
    post = client.get("/blog/what-happens-during-a-stem-cell-procedure").get_data(as_text=True)
    assert "General information only; a clinician decides what suits you." in post
    footer = email_footer(app)
    assert "Front Range Regenerative, 9 Elm St, Boulder, CO 80302" in footer
    assert "General information only; a clinician decides what suits you." in footer
    with app.app_context():
        changes = [entry.detail for entry in audit(db.session, "settings")]
    assert any('"key": "CLINIC_NAME"' in detail and "Front Range Regenerative" in detail for detail in changes)
    assert len(changes) == 6


def test_an_emptied_setting_goes_back_to_the_environments_value(app, staff, client):
    save(staff, CLINIC_POSTAL_ADDRESS="Somewhere Else, 1 Road, Denver, CO 80202")
    assert "Somewhere Else" in client.get("/").get_data(as_text=True)
    save(staff, CLINIC_POSTAL_ADDRESS="")
    assert "100 Example Ave" in client.get("/").get_data(as_text=True)


def test_a_bad_value_is_refused_next_to_its_field_and_nothing_is_saved(app, staff, client):
    response = save(staff, CLINIC_TIMEZONE="Mars/Olympus", HOME_HEADLINE="Saved with it?")
    assert response.status_code == 400
    error = html_lib.unescape(field_error(response.get_data(as_text=True), "CLINIC_TIMEZONE"))
    assert error == "'Mars/Olympus' is not a time zone (use a name like America/Denver)"
    assert "Saved with it?" not in client.get("/").get_data(as_text=True)


def test_a_change_in_one_process_reaches_another_within_the_refresh_interval(app, staff, make_config):
    other = create_app(make_config(CONTENT_REFRESH_SECONDS=0.2))  # a second web process on the same database
    visitor = other.test_client()
    assert "Regenerative medicine for joints" in visitor.get("/").get_data(as_text=True)
    save(staff, HOME_HEADLINE="Changed in the admin")
    time.sleep(0.3)
    assert "Changed in the admin" in visitor.get("/").get_data(as_text=True)


def test_only_admins_change_settings(app, client, make_user):
    email = make_user("mia@nexgenesis.example", role="marketer")
    login(client, email)
    assert client.get("/admin/settings").status_code == 403


def test_every_forms_privacy_checkbox_links_the_notice(client):
    page = client.get("/stem-cell-therapy").get_data(as_text=True)
    checkbox = page.index('name="privacy_ack"')
    assert 'href="/privacy"' in page[checkbox : checkbox + 600]
