"""Record staff alerts and webhook events in the caller's transaction; the nurture worker sends them later."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError

from alerts.models import WebhookEvent
from core.clock import now
from core.db import among, chunked, insert_rows
from leads.models import Lead, Submission
from mailer import wake
from mailer.models import Delivery

# The admin's lead page; the first that exists wins.
LEAD_ENDPOINTS = ("admin.lead_detail", "admin.lead")
INTAKE_REASON = "You receive this because your address is in INTAKE_EMAILS."
DIGEST_REASON = "You receive this because your address is in INTAKE_EMAILS and INTAKE_DIGEST is daily."


def admin_lead_url(lead_id: int, app: Flask | None = None) -> str:
    """Absolute link to the lead's admin page, usable outside a request (worker, signals)."""
    app = app or current_app._get_current_object()
    site = app.config["SITE_URL"].rstrip("/")
    return site + admin_lead_path(lead_id, app)


def admin_lead_path(lead_id: int, app: Flask | None = None) -> str:
    """Path of the admin's lead page, built from its route when the admin registers one."""
    app = app or current_app._get_current_object()
    for endpoint in LEAD_ENDPOINTS:
        if endpoint in app.view_functions:
            try:
                return app.url_map.bind("localhost").build(endpoint, {"lead_id": lead_id})
            except BuildError:
                continue  # a changed route signature must not break a signup; the documented path still works
    return f"/admin/leads/{lead_id}"


@lru_cache(maxsize=4)
def _insert_deliveries(dialect: str) -> Any:
    """INSERT INTO deliveries ... ON CONFLICT (dedupe_key) DO NOTHING, built once per dialect."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(Delivery.__table__).on_conflict_do_nothing(index_elements=["dedupe_key"])


def insert_ignoring_duplicates(session: Session, rows: list[dict[str, object]]) -> None:
    """Insert deliveries, skipping any whose dedupe_key exists, without aborting the caller's transaction."""
    if not rows:
        return
    moment = now()
    full = [{"created_at": moment, "updated_at": moment, "attempts": 0, "state": "pending", **row} for row in rows]
    # Plain executemany on the session's connection: it runs inside a signup's write lock, and the ORM's bulk
    # path costs several times more. Pending objects go first, as autoflush would have sent them.
    session.flush()
    connection = session.connection()
    connection.execute(_insert_deliveries(connection.dialect.name), full)


def intake_key(submission_id: int, address: str) -> str:
    """The dedupe key of one intake alert: one per submission and address, across restarts."""
    return f"intake:{submission_id}:{address}"


def record_intake_alerts(session: Session, lead: Lead, submission: Submission, addresses: Iterable[str]) -> int:
    """Record one pending intake_alert delivery per address for this submission."""
    addresses = list(dict.fromkeys(a.strip().lower() for a in addresses if a.strip()))
    if not addresses:
        return 0
    if lead.id is None or submission.id is None:
        session.flush()
    moment = now()
    rows = [
        {
            "kind": "intake_alert",
            "recipient": address,
            "lead_id": lead.id,
            "due_at": moment,
            "dedupe_key": intake_key(submission.id, address),
        }
        for address in addresses
    ]
    insert_ignoring_duplicates(session, rows)
    wake.soon(session)  # the front desk hears of the request as soon as it is committed, not at the next tick
    return len(rows)


def parse_intake_key(key: str) -> tuple[int, str]:
    """(submission id, address) from an intake alert's dedupe key."""
    _, submission_id, address = key.split(":", 2)
    return int(submission_id), address


def lead_data(lead: Lead, app: Flask) -> dict[str, object]:
    """What a webhook may say about a lead: ids, status, attribution and a link. No name, contact or health detail."""
    return {
        "lead_id": lead.id,
        "status": lead.status,
        "source": lead.source,
        "landing_page": lead.landing_slug,
        "admin_url": admin_lead_url(lead.id, app),
        "lead_created_at": _iso(lead.created_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def record_webhook_event(
    session: Session, event_type: str, lead: Lead, extra: dict[str, object] | None = None, app: Flask | None = None
) -> str | None:
    """Record one event per WEBHOOK_URLS entry (same event id for all); returns the event id or None."""
    app = app or current_app._get_current_object()
    urls = list(dict.fromkeys(app.config.get("WEBHOOK_URLS") or []))
    if not urls:
        return None
    if lead.id is None:
        session.flush()
    moment = now()
    rows = _event_rows(event_type, lead, extra, urls, moment, app)
    for row in rows:
        session.add(WebhookEvent(**row))
    return rows[0]["event_id"]


def _event_rows(
    event_type: str, lead: Any, extra: dict[str, object] | None, urls: list[str], moment: datetime, app: Flask
) -> list[dict[str, Any]]:
    """One pending webhook row per URL for this lead's event: the same event id and payload for every URL."""
    event_id = str(uuid.uuid4())
    data = lead_data(lead, app)
    data.update(extra or {})
    payload = json.dumps(
        {"id": event_id, "type": event_type, "created_at": _iso(moment), "data": data},
        separators=(",", ":"),
        sort_keys=True,
    )
    return [
        {
            "event_id": event_id,
            "event_type": event_type,
            "url": url,
            "lead_id": lead.id,
            "payload": payload,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": moment,
            "created_at": moment,
        }
        for url in urls
    ]


def record_webhook_events(
    session: Session,
    event_type: str,
    lead_ids: list[int],
    extra: dict[str, object] | None = None,
    app: Flask | None = None,
) -> int:
    """record_webhook_event() for many leads at once (leads loaded and rows inserted per chunk); returns rows added."""
    app = app or current_app._get_current_object()
    urls = list(dict.fromkeys(app.config.get("WEBHOOK_URLS") or []))
    if not urls or not lead_ids:
        return 0
    session.flush()
    moment = now()
    added = 0
    for chunk in chunked(list(dict.fromkeys(lead_ids))):
        # Rows of the columns lead_data reads, not whole leads (flushed above: what the session changed is read).
        leads = {
            row.id: row
            for row in session.execute(
                select(Lead.id, Lead.status, Lead.source, Lead.landing_slug, Lead.created_at).where(
                    among(session, Lead.id, chunk)
                )
            )
        }
        rows = []
        for lead_id in chunk:
            lead = leads.get(lead_id)
            if lead is None:
                continue
            rows.extend(_event_rows(event_type, lead, extra, urls, moment, app))
        insert_rows(session, WebhookEvent.__table__, rows)
        added += len(rows)
    return added


def first_submission_id(session: Session, lead_id: int) -> int | None:
    """The id of a lead's first submission, to tell a new lead from a repeat request."""
    return session.scalar(select(Submission.id).where(Submission.lead_id == lead_id).order_by(Submission.id).limit(1))
