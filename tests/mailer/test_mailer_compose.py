"""Building emails from Markdown, and the outbox and console senders."""

from __future__ import annotations

import email
import logging
from email import policy
from pathlib import Path

import pytest

from core.db import db
from leads.models import Lead
from mailer.base import ComposeError, SettingError, get_sender
from mailer.compose import build_message
from mailer.links import provider_campaign_id, provider_step_id
from mailer.plaintext import markdown_to_text
from mailer.senders import ConsoleSender, OutboxSender

BODY = """Hi {{ first_name }},

Read [how it works](blog:how-stem-cells-work) before your visit.

- one point
- a [second](https://example.org/page) point
"""


def make_lead(first_name: str = "Dana") -> Lead:
    lead = Lead(email="dana@example.com", first_name=first_name, interest="spine", email_opt_in=True)
    db.session.add(lead)
    db.session.commit()
    return lead


def build(lead: Lead, **changes: object):
    kwargs = {
        "to": lead.email,
        "subject": "Hello {{ first_name }}",
        "preheader": "A short note before your visit",
        "markdown": BODY,
        "context": {"first_name": lead.first_name, "clinic_name": "NexGenEsis Healthcare"},
        "lead": lead,
        "campaign_slug": "stem-cell-therapy",
        "step_id": "science",
        "delivery_id": 12,
        "reason": "You asked us about a consultation.",
    }
    kwargs.update(changes)
    return build_message(**kwargs)


def test_message_has_text_html_footer_and_list_headers(app):
    with app.app_context():
        message = build(make_lead())
        campaign_id = provider_campaign_id("stem-cell-therapy")
        # "science" is no step of the loaded campaign: a keyed hash stands in for its position.
        step_id = provider_step_id("stem-cell-therapy", "science")
    assert message.subject == "Hello Dana"
    assert message.from_email == app.config["MAIL_FROM"]
    assert message.reply_to == app.config["MAIL_REPLY_TO"]
    tagged = (
        "http://127.0.0.1:5000/blog/how-stem-cells-work?utm_source=nurture&utm_medium=email"
        "&utm_campaign=stem-cell-therapy&utm_content=" + step_id
    )
    assert f"how it works ({tagged})" in message.text
    assert "- a second (https://example.org/page) point" in message.text
    assert tagged.replace("&", "&amp;") in message.html
    assert "A short note before your visit" in message.html  # the preheader, hidden
    assert "display: none" in message.html
    assert "@media" in message.html  # responsive rules kept for phones
    for part in (message.text, message.html):
        assert "100 Example Ave" in part
        assert "You asked us about a consultation." in part
        assert message.headers["List-Unsubscribe"].strip("<>") in part
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.headers["List-Id"].endswith(f"<{campaign_id}.nexgenesis.example>")
    assert step_id.startswith("s")
    assert message.custom_args == {"delivery_id": "12", "campaign": campaign_id, "step": step_id}
    assert message.categories == [campaign_id]
    assert len(message.html.encode()) + len(message.text.encode()) < 100_000


def test_a_name_cannot_inject_links_or_html(app):
    with app.app_context():
        message = build(make_lead(first_name="<b>Eve</b> [win](http://evil.example)"))
    assert "<b>Eve" not in message.html
    assert 'href="http://evil.example"' not in message.html
    assert "[win](http://evil.example)" in message.text


def test_marketing_email_needs_the_postal_address_a_setting_not_a_content_error(app):
    app.config["CLINIC_POSTAL_ADDRESS"] = ""
    with app.app_context(), pytest.raises(SettingError, match=r"^CLINIC_POSTAL_ADDRESS: is not set") as caught:
        build(make_lead())
    # Not a ComposeError: a setting pauses sending instead of failing the delivery.
    assert not isinstance(caught.value, ComposeError)
    assert caught.value.setting == "CLINIC_POSTAL_ADDRESS"


def test_an_unknown_variable_is_an_error_naming_it(app):
    with app.app_context(), pytest.raises(ComposeError, match="interest"):
        build(make_lead(), markdown="Your {{ interest }} pain")


def test_the_template_sandbox_blocks_python_internals(app):
    with app.app_context(), pytest.raises(ComposeError):
        build(make_lead(), markdown="{{ first_name.__class__.__mro__[1].__subclasses__() }}")


def test_custom_args_accept_ids_only(app):
    with app.app_context():
        lead = make_lead()
        with pytest.raises(ValueError, match="ids only"):
            build(lead, custom_args={"interest": "knee"})
        with pytest.raises(ValueError, match="must be an id"):
            build(lead, custom_args={"kind": "my knee hurts"})


def test_an_oversized_email_is_refused(app):
    with app.app_context(), pytest.raises(ComposeError, match="100 KB"):
        build(make_lead(), markdown="word " * 30_000)


def test_plain_text_keeps_structure():
    text = markdown_to_text("# Title\n\nPara with **bold**.\n\n1. first\n2. second\n\n> quoted\n")
    assert text == "Title\n\nPara with bold.\n\n1. first\n2. second\n\n> quoted\n"


def test_outbox_writes_one_eml_per_message_in_time_order(app, tmp_path):
    with app.app_context():
        lead = make_lead()
        sender = get_sender()
        assert isinstance(sender, OutboxSender)
        ids = [sender.send(build(lead, subject=f"Message {n}")) for n in range(3)]
    files = sorted(Path(app.config["OUTBOX_DIR"]).glob("*.eml"))
    assert len(files) == 3
    assert not list(Path(app.config["OUTBOX_DIR"]).glob(".tmp-*"))
    parsed = [email.message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    assert [p["Subject"] for p in parsed] == ["Message 0", "Message 1", "Message 2"]
    first = parsed[0]
    assert b"\nList-Unsubscribe: <http://127.0.0.1:5000/unsubscribe/" in files[0].read_bytes().replace(b"\r\n", b"\n")
    assert first["Message-ID"].strip("<>") == ids[0]
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first["List-Unsubscribe"].startswith("<http://127.0.0.1:5000/unsubscribe/")
    assert first["From"] == "NexGenEsis Healthcare <care@nexgenesis.example>"
    assert first.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in first.iter_parts()] == ["text/plain", "text/html"]


def test_console_logs_ids_and_header_names_but_no_address_name_subject_or_link(app, caplog):
    with app.app_context():
        message = build(make_lead(), markdown="Secret body sentence.")
        with caplog.at_level(logging.INFO, logger="mailer.senders"):
            ConsoleSender().send(message)
    assert '"delivery_id": "12"' in caplog.text
    assert "List-Unsubscribe" in caplog.text
    token = message.headers["List-Unsubscribe"].strip("<>").rsplit("/", 1)[-1]
    for secret in ("Secret body sentence", "dana@example.com", "Dana", message.subject, token):
        assert secret not in caplog.text
