"""`python -m bench.webhook`: how long the SendGrid webhook takes to answer a large signed batch.

Seeds leads with one sent email each, then posts signed batches through the app in process, as one gunicorn
worker would answer them, and times the answer: 10,000 events shaped like SendGrid's documented sample events
(processed, delivered, open, click, and 1% bounces to addresses of their own; 2.7 MB), and 40,000 lean events
(only email, event, sg_event_id, timestamp, delivery_id; 5.0 MB, just under the 5 MiB limit) like the review's,
and the slowest kinds: 10,000 bounces of addresses of their own (each suppresses an address), and 10,000 bounces
of 10,000 enrolled leads' own addresses (each also bounces the lead's email, ends its enrollment, skips its next
email and records a lead.unsubscribed webhook). Then checks every event was stored once, every bounced lead's
address suppressed and enrollment ended, and that posting the batch again stores nothing.
Environment: BENCH_DATABASE_URL (PostgreSQL server; default TEST_DATABASE_URL or the local one).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from alerts.models import WebhookEvent
from app import create_app, load_models
from config import Config
from core.clock import FrozenClock
from core.db import Base, db, normalize_url
from leads.models import Lead
from mailer.models import Delivery, ProviderEvent, Suppression
from nurture.models import Enrollment
from tests.fakes.sendgrid import WebhookSigner

NOW = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
LEADS = 2_000
# The enrolled leads whose own addresses bounce: ids from ENROLLED_FROM on, apart from the 2,000 above.
ENROLLED = 10_000
ENROLLED_FROM = 100_001
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KINDS = ("processed", "delivered", "open", "open", "click", "open", "delivered", "click", "open", "processed")


def make_app(url: str, instance: Path, signer: WebhookSigner):
    """The app on `url` with the benchmark's clock and webhook key."""
    config = Config(
        {
            "DATABASE_URL": url,
            "INSTANCE_PATH": str(instance),
            "SECRET_KEY": "bench",
            "LOG_LEVEL": "WARNING",
            "SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public_key,
            "WEBHOOK_URLS": "https://hooks.bench.example/leads",
            "WEBHOOK_SECRET": "bench-webhook-secret",
        }
    )
    config.CLOCK = FrozenClock(NOW)
    return create_app(config)


def seed(app) -> None:
    """LEADS leads with one sent welcome email each (provider message id `msg<id>`)."""
    leads = [
        {"id": n, "email": f"lead{n}@bench.example", "first_name": "Bench", "status": "new", "source": "bench"}
        for n in range(1, LEADS + 1)
    ]
    deliveries = [
        {
            "id": n,
            "dedupe_key": f"bench:{n}",
            "kind": "nurture",
            "lead_id": n,
            "campaign_slug": "stem-cell-therapy",
            "step_id": "1",
            "state": "sent",
            "provider_message_id": f"msg{n}",
            "sent_at": NOW,
        }
        for n in range(1, LEADS + 1)
    ]
    enrolled = range(ENROLLED_FROM, ENROLLED_FROM + ENROLLED)
    leads += [{**leads[0], "id": n, "email": f"lead{n}@bench.example", "email_opt_in": True} for n in enrolled]
    deliveries += [
        {
            **deliveries[0],
            "id": n,
            "dedupe_key": f"bench:{n}",
            "lead_id": n,
            "enrollment_id": n,
            "provider_message_id": f"msg{n}",
        }
        for n in enrolled
    ]
    # Each enrolled lead's next email, due later: the bounce must skip it.
    deliveries += [
        {
            **deliveries[0],
            "id": n + ENROLLED,
            "dedupe_key": f"bench:next:{n}",
            "lead_id": n,
            "enrollment_id": n,
            "step_id": "2",
            "state": "pending",
            "provider_message_id": None,
            "sent_at": None,
            "due_at": NOW,
        }
        for n in enrolled
    ]
    enrollments = [
        {
            "id": n,
            "lead_id": n,
            "campaign_slug": "stem-cell-therapy",
            "state": "active",
            "next_step": 1,
            "next_send_at": NOW,
            "created_at": NOW,
        }
        for n in enrolled
    ]
    with app.app_context(), db.write_transaction() as session:
        session.execute(insert(Lead), leads)
        session.execute(insert(Enrollment), enrollments)
        session.execute(insert(Delivery), deliveries)


def batch(size: int, tag: str, shape: str = "full") -> list[dict]:
    """`size` events on the seeded emails; one in a hundred (or with shape "bounces" each) bounces an address of
    its own; with shape "leads" each bounces an enrolled lead's own address."""
    lean = shape == "lean"
    stamp = int(NOW.timestamp()) - 60
    events = []
    for n in range(size):
        lead = ENROLLED_FROM + n % ENROLLED if shape == "leads" else n % LEADS + 1
        kind = "bounce" if n % 100 == 99 or shape in ("bounces", "leads") else KINDS[n % len(KINDS)]
        own = kind != "bounce" or shape == "leads"
        email = f"lead{lead}@bench.example" if own else f"bounced{tag}{n}@bench.example"
        event = {
            "email": email,
            "timestamp": stamp,
            "smtp-id": f"<msg{lead}@ismtpd-555>",
            "event": kind,
            "category": "stem-cell-therapy",
            "sg_event_id": f"{tag}-{n}",
            "sg_message_id": f"msg{lead}.filter0001.16648.5515E0B88.0",
            "delivery_id": str(lead),
        }
        if lean:
            event = {k: event[k] for k in ("email", "event", "sg_event_id", "timestamp", "delivery_id")}
        elif kind == "bounce":
            event.update(reason="500 unknown recipient", status="5.0.0", type="bounce")
        if kind == "click" and not lean:
            event["url"] = "https://clinic.example/blog/post?utm_source=nurture"
        events.append(event)
    return events


def measure(url: str, label: str, sizes: list[tuple[int, str]]) -> None:
    """Print, per batch size: bytes, time to the answer, status, events stored, and the replay's result."""
    signer = WebhookSigner()
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(url, Path(tmp) / "instance", signer)
        with app.app_context():
            Base.metadata.create_all(db.engine)
        seed(app)
        client = app.test_client(use_cookies=False)
        for size, shape in sizes:
            tag = uuid.uuid4().hex[:6]
            body, headers = signer.sign(json.dumps(batch(size, tag, shape), separators=(",", ":")).encode(), NOW)
            started = time.perf_counter()
            answer = client.post("/webhooks/sendgrid", data=body, headers=headers)
            took = time.perf_counter() - started
            with app.app_context():
                stored = db.session.scalar(
                    select(func.count()).select_from(ProviderEvent).where(ProviderEvent.sg_event_id.like(f"{tag}-%"))
                )
                db.session.commit()
            effects = outcome(app)
            replay = client.post("/webhooks/sendgrid", data=body, headers=headers)
            print(
                f"{label:10} {size:>7,} {shape:7} events, {len(body) / 1e6:4.2f} MB: "
                f"answered {answer.status_code} in {took:5.2f} s; stored {stored:,}; "
                f"replay answered {replay.status_code}, {(replay.get_json() or {}).get('duplicate', '?')} duplicates"
            )
            if shape == "leads":
                suppressed, bounced, exited, skipped, hooks = effects
                print(
                    f"{'':10} enrolled leads: {suppressed:,} suppressed, {bounced:,} emails bounced, {exited:,} "
                    f"enrollments ended, {skipped:,} next emails skipped, {hooks:,} webhook events; the replay "
                    + ("changed nothing" if outcome(app) == effects else "CHANGED THEM")
                )
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def outcome(app) -> tuple[int, int, int, int, int]:
    """What the enrolled leads' bounces did: suppressions, bounced emails, ended enrollments, skipped emails, hooks."""
    enrolled = Delivery.lead_id >= ENROLLED_FROM
    with app.app_context():
        counts = (
            db.session.scalar(select(func.count()).select_from(Suppression).where(Suppression.email.like("lead%"))),
            db.session.scalar(select(func.count()).where(enrolled, Delivery.state == "bounced")),
            db.session.scalar(select(func.count()).where(Enrollment.state == "exited")),
            db.session.scalar(select(func.count()).where(enrolled, Delivery.state == "skipped")),
            db.session.scalar(select(func.count()).select_from(WebhookEvent)),
        )
        db.session.commit()
    return counts


def _pg_database(server: str) -> tuple[str, str] | None:
    url = make_url(normalize_url(server))
    name = f"bench_webhook_{uuid.uuid4().hex[:8]}"
    try:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:  # noqa: BLE001 - no server: measure SQLite only
        print(f"PostgreSQL not measured: {type(exc).__name__}", file=sys.stderr)
        return None
    return url.set(database=name).render_as_string(hide_password=False), name


def main() -> None:
    """Measure on SQLite and, when reachable, PostgreSQL."""
    load_models()
    sizes = [(10_000, "full"), (40_000, "lean"), (10_000, "bounces"), (ENROLLED, "leads")]
    with tempfile.TemporaryDirectory() as tmp:
        measure(f"sqlite:///{Path(tmp) / 'bench.db'}", "SQLite", sizes)
    server = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or PG_DEFAULT
    created = _pg_database(server)
    if created:
        url, name = created
        try:
            measure(url, "PostgreSQL", sizes)
        finally:
            admin = create_engine(make_url(normalize_url(server)), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
