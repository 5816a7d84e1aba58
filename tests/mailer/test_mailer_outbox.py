"""The outbox's copies of sent email: removed with the lead they concern, and only those."""

from __future__ import annotations

import re
from pathlib import Path

from mailer.base import Message
from mailer.outbox import erase_copies
from mailer.senders import OutboxSender


def _send(folder: Path, to: str, text: str) -> str:
    message = Message(to=to, subject="Hi", text=text, html=f"<p>{text}</p>", from_email="care@nexgenesis.example")
    return OutboxSender(folder).send(message)


def test_copies_go_by_address_or_id_and_a_digest_only_when_it_lists_the_lead(app, tmp_path):
    with app.app_context():
        _send(tmp_path, "Zoe@Example.com", "Hello Zoe")
        _send(tmp_path, "other@example.com", "Hello Other")
        alert = _send(tmp_path, "desk@clinic.example", "New lead Zoe /admin/leads/5")
        listing_five = _send(tmp_path, "desk@clinic.example", "Digest: /admin/leads/5 and /admin/leads/7")
        listing_fifty = _send(tmp_path, "desk@clinic.example", "Digest: /admin/leads/50")
    five = re.compile(r"/admin/leads/5(?!\d)")
    assert erase_copies(tmp_path, addresses=["zoe@example.com"], message_ids=[alert]) == 2
    assert erase_copies(tmp_path, message_ids=[listing_five, listing_fifty], containing=five) == 1
    left = sorted(p.read_text() for p in tmp_path.glob("*.eml"))
    assert len(left) == 2
    assert any("Hello Other" in text for text in left)
    assert any("/admin/leads/50" in text for text in left)
    assert erase_copies(tmp_path / "missing") == 0
