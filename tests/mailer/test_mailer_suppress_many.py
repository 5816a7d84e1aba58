"""suppress_many (a provider's batch at once) leaves exactly what suppress() one address at a time leaves."""

from __future__ import annotations

import json
from collections import Counter

from flask import Flask
from sqlalchemy import insert, select

from alerts.models import WebhookEvent
from core.db import db
from leads.models import Consent, Lead
from mailer.models import Delivery, Suppression
from mailer.suppression import Suppressing, suppress, suppress_many
from nurture.models import Enrollment

# (address, reason, detail, whether the caller names the lead); leads 1-6 exist and are enrolled, stray@ is no lead.
BATCH = [
    ("{p}1@example.com", "bounce", "550 no such user", True),
    ("{p}2@example.com", "spamreport", None, True),
    ("{p}3@example.com", "bounce", "mailbox full for good", False),
    ("{p}3@example.com", "unsubscribe", None, True),
    ("{p}4@example.com", "unsubscribe", None, False),
    ("{p}4@example.com", "unsubscribe", "again", False),
    ("  {P}5@Example.COM ", "dropped", "invalid", False),
    ("{p}6@example.com", "group_unsubscribe", None, True),
    ("stray-{p}@example.com", "bounce", None, False),
    ("{p}1@example.com", "spamreport", None, False),
]


def _seed(prefix: str, moment) -> dict[int, str]:
    """Leads {prefix}1-6 opted in, each with an active enrollment and its next email pending; {prefix}6 was
    suppressed by staff before."""
    with db.write_transaction() as session:
        ids = {}
        for n in range(1, 7):
            lead = Lead(email=f"{prefix}{n}@example.com", first_name="R", email_opt_in=True)
            session.add(lead)
            session.flush()
            ids[lead.id] = lead.email
            enrollment = Enrollment(lead_id=lead.id, campaign_slug="stem-cell-therapy", state="active", next_step=1)
            session.add(enrollment)
            session.flush()
            session.execute(
                insert(Delivery),
                [
                    {
                        "dedupe_key": f"{prefix}:{n}",
                        "lead_id": lead.id,
                        "enrollment_id": enrollment.id,
                        "state": "pending",
                        "due_at": moment,
                    }
                ],
            )
        suppress(session, f"{prefix}6@example.com", "manual", "admin")
    return ids


def _outcome(prefix: str, ids: dict[int, str]) -> dict[str, object]:
    """Everything the suppressions changed, with the prefix taken out of addresses so two runs compare."""
    db.session.expire_all()

    def plain(text: str | None) -> str | None:
        return text.replace(prefix, "X") if text else text

    leads = db.session.scalars(select(Lead).where(Lead.id.in_(ids))).all()
    return {
        "suppressions": sorted(
            (plain(s.email), s.reason, s.source, s.detail)
            for s in db.session.scalars(select(Suppression).where(Suppression.email.contains(prefix)))
        ),
        "leads": sorted((plain(lead.email), lead.unsubscribed_at is not None, lead.email_opt_in) for lead in leads),
        "consents": sorted(
            (plain(ids[c.lead_id]), c.purpose, c.version, c.granted, c.source)
            for c in db.session.scalars(select(Consent).where(Consent.lead_id.in_(ids)))
        ),
        "enrollments": sorted(
            (plain(ids[e.lead_id]), e.state, e.exit_reason, e.ended_at is not None)
            for e in db.session.scalars(select(Enrollment).where(Enrollment.lead_id.in_(ids)))
        ),
        "deliveries": sorted(
            (plain(ids[d.lead_id]), d.state, d.error)
            for d in db.session.scalars(select(Delivery).where(Delivery.lead_id.in_(ids)))
        ),
        "webhooks": Counter(
            (plain(ids[w.lead_id]), w.event_type, _reason(w.payload))
            for w in db.session.scalars(select(WebhookEvent).where(WebhookEvent.lead_id.in_(ids)))
        ),
    }


def _reason(payload: str) -> str:
    data = json.loads(payload)["data"]
    return f"{data.get('reason')}/{data.get('unsubscribed_via')}"


def _items(prefix: str, ids: dict[int, str]) -> list[tuple[str, str, str | None, int | None]]:
    by_email = {email: lead_id for lead_id, email in ids.items()}
    items = []
    for address, reason, detail, named in BATCH:
        email = address.format(p=prefix, P=prefix.upper())
        items.append((email, reason, detail, by_email.get(email.strip().lower()) if named else None))
    return items


def test_a_batch_suppressed_at_once_ends_as_one_at_a_time(app: Flask, clock) -> None:
    app.config.update(WEBHOOK_URLS=["https://hooks.example/leads"], WEBHOOK_SECRET="s" * 32)
    with app.app_context():
        one_ids, bulk_ids = _seed("one", clock.now()), _seed("bulk", clock.now())
        with db.write_transaction() as session:
            done = set()
            # As the webhook did before it worked in bulk: each (address, reason) of a batch once, in order.
            for email, reason, detail, lead_id in _items("one", one_ids):
                if (email.strip().lower(), reason) not in done:
                    done.add((email.strip().lower(), reason))
                    lead = session.get(Lead, lead_id) if lead_id else None
                    suppress(session, email, reason, "provider", detail=detail, lead=lead)
        with db.write_transaction() as session:
            items = [Suppressing(*item) for item in _items("bulk", bulk_ids)]
            assert suppress_many(session, items, "provider") == 6
        one, bulk = _outcome("one", one_ids), _outcome("bulk", bulk_ids)
        assert bulk == one
        # What both did, so the comparison cannot pass on two empty outcomes.
        assert ("X1@example.com", "bounce", "provider", "550 no such user") in one["suppressions"]
        assert ("X6@example.com", "manual", "admin", None) in one["suppressions"]
        assert ("X3@example.com", True, False) in one["leads"]
        assert ("X5@example.com", False, True) in one["leads"]
        assert ("X3@example.com", "exited", "unsubscribed:bounce", True) in one["enrollments"]
        assert sum(one["webhooks"].values()) == 8 + 1  # and the staff's suppression before
        with db.write_transaction() as session:
            assert suppress_many(session, items, "provider") == 0
        again = _outcome("bulk", bulk_ids)
        # A repeat changes no row; like suppress() called again, it announces each lead again.
        assert {k: v for k, v in again.items() if k != "webhooks"} == {k: v for k, v in bulk.items() if k != "webhooks"}
        assert sum(again["webhooks"].values()) == sum(bulk["webhooks"].values()) + 8
