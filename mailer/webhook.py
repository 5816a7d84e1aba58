"""SendGrid's Event Webhook: verify the signature, store each event once, update deliveries and suppressions."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import now
from mailer.models import ProviderEvent
from mailer.suppression import suppress

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MAX_AGE_SECONDS = 600
SUPPRESSING_EVENTS = frozenset({"bounce", "dropped", "spamreport", "unsubscribe", "group_unsubscribe"})
_EMAIL = re.compile(r"[^\s<>\"'@,;:]+@[^\s<>\"'@,;:]+")


class WebhookError(Exception):
    """The request cannot be accepted; `status` is the HTTP answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@lru_cache(maxsize=4)
def load_public_key(value: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key: base64 DER as its settings page shows it (a PEM block works too)."""
    text = value.strip()
    if text.startswith("-----BEGIN"):
        key = load_pem_public_key(text.encode())
    else:
        key = load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("SENDGRID_WEBHOOK_PUBLIC_KEY is not an elliptic-curve key")
    return key


def verify(public_key: str, signature: str | None, timestamp: str | None, body: bytes) -> None:
    """Raise WebhookError(403) unless the body is signed by SendGrid within the last 10 minutes."""
    if not public_key:
        raise WebhookError(403, "webhook verification key not configured")
    if not signature or not timestamp:
        raise WebhookError(403, "missing signature headers")
    if not (timestamp.isascii() and timestamp.isdecimal()) or len(timestamp) > 12:
        raise WebhookError(403, "bad timestamp")
    age = now().timestamp() - int(timestamp)
    if abs(age) > MAX_AGE_SECONDS:
        raise WebhookError(403, "stale timestamp")
    try:
        key = load_public_key(public_key)
    except (ValueError, binascii.Error, UnsupportedAlgorithm):
        log.error("SENDGRID_WEBHOOK_PUBLIC_KEY cannot be read; every event is refused")
        raise WebhookError(403, "webhook verification key unreadable") from None
    try:
        raw_signature = base64.b64decode(signature.strip(), validate=True)
        key.verify(raw_signature, timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error):
        raise WebhookError(403, "bad signature") from None


def parse(body: bytes) -> list[dict[str, Any]]:
    """The event batch; WebhookError(400) when it is not a JSON array."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WebhookError(400, "body is not JSON") from None
    if not isinstance(data, list):
        raise WebhookError(400, "body must be a JSON array of events")
    return [item for item in data if isinstance(item, dict)]


def _text(value: Any, limit: int) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    # PostgreSQL text cannot hold NUL; a signed event carrying one must not become a 500.
    text = str(value).replace("\x00", "").strip()
    return text[:limit] if text else None


def _occurred(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return now()


def _scrub(reason: str | None, email: str | None) -> str | None:
    """The provider's reason without any address in it, truncated."""
    if not reason:
        return None
    if email:
        reason = reason.replace(email, "[address]")
    return _EMAIL.sub("[address]", reason)[:500]


def _clean_url(url: Any) -> str | None:
    """Keep where a click went, not its query (it may carry tokens)."""
    text = _text(url, 2000)
    if not text:
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    path = parts.path
    if "/unsubscribe/" in path:
        path = path.split("/unsubscribe/")[0] + "/unsubscribe/"
    return f"{parts.scheme}://{parts.netloc}{path}"[:1000] if parts.scheme else None


def _find_delivery(session: Session, event: dict[str, Any]) -> Any:
    from nurture.models import Delivery

    raw_id = _text(event.get("delivery_id"), 20)
    # ASCII digits that fit a BIGINT: anything else would make the lookup itself fail (a 500).
    if raw_id and raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 18:
        delivery = session.get(Delivery, int(raw_id))
        if delivery is not None:
            return delivery
    message_id = _text(event.get("sg_message_id"), 200)
    if message_id:
        # sg_message_id is X-Message-Id plus ".filter..." suffixes.
        prefix = message_id.split(".")[0]
        return session.scalar(select(Delivery).where(Delivery.provider_message_id == prefix).limit(1))
    return None


def _apply(session: Session, event: dict[str, Any], kind: str, at: datetime, delivery: Any, reason: str | None) -> None:
    if delivery is not None:
        if kind == "processed":
            if delivery.state in ("pending", "sending", "retrying", "unknown", "failed"):
                delivery.state = "sent"
            delivery.sent_at = delivery.sent_at or at
        elif kind == "delivered":
            if delivery.state not in ("bounced",):
                delivery.state = "delivered"
            delivery.sent_at = delivery.sent_at or at
            delivery.delivered_at = delivery.delivered_at or at
        elif kind == "open":
            delivery.open_count = (delivery.open_count or 0) + 1
            delivery.opened_at = delivery.opened_at or at
        elif kind == "click":
            delivery.click_count = (delivery.click_count or 0) + 1
            delivery.clicked_at = delivery.clicked_at or at
        elif kind == "bounce" and event.get("type") != "blocked":
            delivery.state = "bounced"
            delivery.bounced_at = delivery.bounced_at or at
            delivery.error = f"bounce: {reason}" if reason else "bounce"
        elif kind == "dropped":
            if delivery.state not in ("delivered", "bounced"):
                delivery.state = "failed"
            delivery.error = f"dropped: {reason}" if reason else "dropped"
        elif kind in ("unsubscribe", "group_unsubscribe", "spamreport"):
            delivery.unsubscribed_at = delivery.unsubscribed_at or at

    # A "blocked" bounce is temporary (the receiving server said not now), so it does not suppress.
    if kind in SUPPRESSING_EVENTS and not (kind == "bounce" and event.get("type") == "blocked"):
        email = _text(event.get("email"), 320)
        lead = None
        if delivery is not None and delivery.lead_id is not None:
            from leads.models import Lead

            lead = session.get(Lead, delivery.lead_id)
            # Trust the address SendGrid names; the lead is only a hint when they agree.
            if lead is not None and email and (lead.email or "").lower() != email.lower():
                lead = None
        if email and "@" in email:
            suppress(session, email, kind, "provider", detail=reason, lead=lead)


def process(session: Session, events: list[dict[str, Any]]) -> dict[str, int]:
    """Store and apply a batch in the caller's transaction; replays (same sg_event_id) are counted once."""
    counts = {"stored": 0, "duplicate": 0, "ignored": 0}
    seen: set[str] = set()
    for event in events:
        event_id = _text(event.get("sg_event_id"), 128)
        kind = _text(event.get("event"), 32)
        if not event_id or not kind:
            counts["ignored"] += 1
            continue
        if event_id in seen or session.scalar(select(ProviderEvent.id).where(ProviderEvent.sg_event_id == event_id)):
            counts["duplicate"] += 1
            continue
        seen.add(event_id)
        at = _occurred(event.get("timestamp"))
        email = _text(event.get("email"), 320)
        reason = _scrub(_text(event.get("reason") or event.get("response") or event.get("status"), 2000), email)
        delivery = _find_delivery(session, event)
        session.add(
            ProviderEvent(
                sg_event_id=event_id,
                event=kind,
                delivery_id=delivery.id if delivery is not None else None,
                occurred_at=at,
                received_at=now(),
                url=_clean_url(event.get("url")) if kind == "click" else None,
                reason=reason,
            )
        )
        _apply(session, event, kind, at, delivery, reason)
        counts["stored"] += 1
    session.flush()
    return counts
