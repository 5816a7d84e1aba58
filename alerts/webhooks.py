"""Outgoing webhooks: signing, verification, and delivery of the recorded outbox (at least once).

Every request is a POST with a JSON body and these headers:

    Content-Type: application/json
    X-Webhook-Id: <event id; the same on every retry, so receivers can drop repeats>
    X-Webhook-Timestamp: <unix seconds of this attempt>
    X-Webhook-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" keyed with WEBHOOK_SECRET>

A receiver verifies with `verify_signature(secret, timestamp, body, signature)` (this module has no
Flask or database imports in that path, so it can be copied as is).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import and_, or_, select, update

from alerts.models import WebhookEvent
from core.clock import now
from core.db import db

log = logging.getLogger(__name__)

SIGNATURE_PREFIX = "sha256="
# Waits before attempt 2, 3, ...; after the last one the event is marked failed.
BACKOFF_SECONDS = (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600)
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1
JITTER = 0.2
TIMEOUT_SECONDS = 5.0
LEASE_SECONDS = 60
BATCH_SIZE = 50
ERROR_LENGTH = 500


def sign(secret: str, timestamp: int | str, body: bytes | str) -> str:
    """The X-Webhook-Signature value for a body sent at `timestamp`."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    message = str(timestamp).encode("ascii") + b"." + body
    return SIGNATURE_PREFIX + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: bytes | str,
    header: str,
    tolerance: int = 300,
    now_ts: float | None = None,
) -> bool:
    """True when `header` signs `body` at `timestamp` with `secret` and the timestamp is within `tolerance` s.

    Use the raw request body (bytes, before any JSON parsing) and the X-Webhook-Timestamp and
    X-Webhook-Signature headers. The comparison is constant-time; a stale or future timestamp is refused
    so a captured request cannot be replayed later. Drop repeats by the X-Webhook-Id header.
    """
    if not secret or not header or timestamp is None:
        return False
    try:
        ts = int(str(timestamp).strip())
    except ValueError:
        return False
    current = time.time() if now_ts is None else now_ts
    if abs(current - ts) > tolerance:
        return False
    expected = sign(secret, ts, body)
    return hmac.compare_digest(expected.encode("ascii"), header.strip().encode("utf-8", "replace"))


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Wait before the next attempt after `attempts` failures: the schedule plus or minus 20% jitter."""
    base = BACKOFF_SECONDS[min(max(attempts, 1), len(BACKOFF_SECONDS)) - 1]
    factor = 1 + (rng or random).uniform(-JITTER, JITTER)
    return timedelta(seconds=base * factor)


@dataclass
class Outcome:
    """What one HTTP attempt came to."""

    ok: bool
    error: str | None = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected POST would become a GET without the body: treat it as a failure instead."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = TIMEOUT_SECONDS) -> Outcome:
    """POST once; any 2xx is success, anything else (status, timeout, refused) an error to retry."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Outcome(False, "unsupported URL (use http:// or https://)")
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if _is_loopback(parts.hostname):
        # A proxy from the environment must never see traffic meant for this machine.
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - scheme checked
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(4096)
            status = response.status
    except urllib.error.HTTPError as exc:
        detail = ""
        try:
            detail = exc.read(200).decode("utf-8", "replace").strip()
        except Exception:  # noqa: BLE001 - the status alone is enough to report
            detail = ""
        finally:
            exc.close()
        return Outcome(False, f"HTTP {exc.code}" + (f": {detail}" if detail else ""))
    except TimeoutError:
        return Outcome(False, f"timeout after {timeout:g} s")
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return Outcome(False, f"timeout after {timeout:g} s")
        return Outcome(False, f"connection failed: {reason}")
    except OSError as exc:
        return Outcome(False, f"connection failed: {type(exc).__name__}: {exc}")
    if 200 <= status < 300:
        return Outcome(True)
    return Outcome(False, f"HTTP {status}")


def headers_for(event_id: str, body: bytes, secret: str, timestamp: int) -> dict[str, str]:
    """The headers of one attempt."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "NexGenEsis-Webhooks/1",
        "X-Webhook-Id": event_id,
        "X-Webhook-Timestamp": str(timestamp),
        "X-Webhook-Signature": sign(secret, timestamp, body),
    }


def _claimable(moment: datetime):  # noqa: ANN202
    # Due pending events, and events whose sender died mid-request (lease expired): at least once.
    return or_(
        and_(WebhookEvent.state == "pending", WebhookEvent.next_attempt_at <= moment),
        and_(WebhookEvent.state == "sending", WebhookEvent.lease_until < moment),
    )


def _claim(event_id: int, lease_until: datetime) -> bool:
    """Take one event with a conditional UPDATE; False when another worker got it first."""
    moment = now()
    with db.write_transaction() as session:
        result = session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == event_id, _claimable(moment))
            .values(state="sending", lease_until=lease_until, attempts=WebhookEvent.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def _finish(event_id: int, lease_until: datetime, outcome: Outcome, attempts: int) -> str:
    """Record the result of an attempt, unless our lease was lost to another worker meanwhile."""
    moment = now()
    if outcome.ok:
        values: dict[str, object] = {
            "state": "delivered",
            "delivered_at": moment,
            "lease_until": None,
            "next_attempt_at": None,
            "last_error": None,
        }
    elif attempts >= MAX_ATTEMPTS:
        values = {"state": "failed", "lease_until": None, "next_attempt_at": None}
    else:
        values = {"state": "pending", "lease_until": None, "next_attempt_at": moment + backoff(attempts)}
    if not outcome.ok:
        values["last_error"] = (outcome.error or "error")[:ERROR_LENGTH]
    with db.write_transaction() as session:
        session.execute(
            update(WebhookEvent)
            .where(
                WebhookEvent.id == event_id,
                WebhookEvent.state == "sending",
                WebhookEvent.lease_until == lease_until,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return str(values["state"])


def deliver_due(limit: int = BATCH_SIZE, timeout: float = TIMEOUT_SECONDS) -> dict[str, int]:
    """One pass of the webhook outbox: send what is due, record the outcome; a tick task of the worker."""
    counts = {"webhooks_delivered": 0, "webhooks_retrying": 0, "webhooks_failed": 0}
    secret = current_app.config.get("WEBHOOK_SECRET", "")
    moment = now()
    session = db.session()
    rows = session.execute(
        select(WebhookEvent.id, WebhookEvent.url, WebhookEvent.event_id, WebhookEvent.payload, WebhookEvent.attempts)
        .where(_claimable(moment))
        .order_by(WebhookEvent.next_attempt_at, WebhookEvent.id)
        .limit(limit)
    ).all()
    session.rollback()  # end the read so SQLite writers are not blocked while we wait on HTTP
    failing_urls: set[str] = set()
    for row in rows:
        if row.url in failing_urls:
            # One failure per URL per pass: a receiver that is down should not stall the whole tick.
            continue
        lease_until = now() + timedelta(seconds=LEASE_SECONDS)
        if not _claim(row.id, lease_until):
            continue
        body = row.payload.encode("utf-8")
        outcome = post(row.url, body, headers_for(row.event_id, body, secret, int(now().timestamp())), timeout)
        state = _finish(row.id, lease_until, outcome, row.attempts + 1)
        if outcome.ok:
            counts["webhooks_delivered"] += 1
        else:
            failing_urls.add(row.url)
            counts["webhooks_failed" if state == "failed" else "webhooks_retrying"] += 1
            log.warning("webhook %s to %s: %s (%s)", row.event_id, _host(row.url), outcome.error, state)
    return counts


def _host(url: str) -> str:
    """The host only: URLs may carry tokens in their path or query, which logs must not keep."""
    return urlsplit(url).netloc or "?"


def receiver_label(url: str) -> str:
    """A URL shown without credentials, path or query (chat webhook URLs carry their secret in the path)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}" + ("/…" if parts.path.strip("/") or parts.query else "/")


def retry_now(event_ids: list[int]) -> int:
    """Put failed events back in the queue with a fresh schedule; returns how many."""
    if not event_ids:
        return 0
    with db.write_transaction() as session:
        result = session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id.in_(event_ids), WebhookEvent.state == "failed")
            .values(state="pending", attempts=0, next_attempt_at=now(), lease_until=None)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount
