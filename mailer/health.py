"""The settings every marketing email needs (checked by `flask nurture run/tick` at start and by each tick), and
signed webhook batches refused as stale (a server clock off by minutes would otherwise drop every event silently).
The sending pause itself is in mailer.ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from core.clock import now
from core.db import db
from mailer.base import SettingError
from mailer.ledger import lower_flag, read_flag, write_flag

log = logging.getLogger(__name__)

STALE_FLAG = "sendgrid_webhook_stale"


def setting_problems(config: Mapping[str, Any]) -> list[SettingError]:
    """What stops every marketing email from being sent with these settings, one problem per variable."""
    problems = []
    if not str(config.get("CLINIC_POSTAL_ADDRESS") or "").strip():
        problems.append(
            SettingError(
                "CLINIC_POSTAL_ADDRESS",
                "is not set: every marketing email must show the clinic's postal address (CAN-SPAM)",
            )
        )
    if str(config.get("MAIL_BACKEND") or "").strip().lower() == "sendgrid":
        if not str(config.get("SENDGRID_API_KEY") or "").strip():
            problems.append(SettingError("SENDGRID_API_KEY", "is not set: MAIL_BACKEND=sendgrid needs an API key"))
        site = str(config.get("SITE_URL") or "")
        if not site.startswith("https://"):
            problems.append(
                SettingError(
                    "SITE_URL",
                    f"{site!r} must start with https:// with MAIL_BACKEND=sendgrid "
                    "(one-click unsubscribe links must be https, RFC 8058)",
                )
            )
    return problems


def record_stale_batch(session: Session, age_seconds: float) -> None:
    """Note a signed batch refused as stale (in the caller's transaction); cleared by the next accepted batch."""
    moment = now().isoformat()
    previous = read_flag(session, STALE_FLAG)
    data = {
        "since": (previous or {}).get("since") or moment,
        "last_at": moment,
        "clock_skew_seconds": round(age_seconds),
        "refused_batches": int((previous or {}).get("refused_batches") or 0) + 1,
    }
    if write_flag(session, STALE_FLAG, data):
        log.error(
            "ALERT: SendGrid's signed event batches are %+d s from this server's clock (limit 600 s) and are "
            "refused; check the clock (NTP)",
            round(age_seconds),
        )


def clear_stale_batches(session: Session) -> None:
    """A batch was accepted: events flow again (in the caller's transaction)."""
    if lower_flag(session, STALE_FLAG):
        log.warning("SendGrid webhook batches are accepted again")


def stale_batches(session: Session) -> dict[str, Any] | None:
    """While the latest signed batches are being refused as stale: since, last_at, clock_skew_seconds, count."""
    return read_flag(session, STALE_FLAG)


def _duration(seconds: int) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size:,} {unit}"
    return f"{seconds} s"


def stale_note(data: dict[str, Any]) -> str:
    """What the refusals mean, in the words /healthz and the dashboard both use."""
    skew = int(data.get("clock_skew_seconds") or 0)
    direction = "older" if skew >= 0 else "newer"
    return (
        f"SendGrid's signed event batches arrive {_duration(abs(skew))} {direction} than this server's clock allows "
        "(10 minutes) and are refused: bounces, drops and unsubscribes are not recorded. Check the server's "
        "clock (NTP)."
    )


def webhook_probe() -> dict[str, Any]:
    """/healthz entry: not ok while signed SendGrid batches are being refused as stale."""
    try:
        data = stale_batches(db.session)
        db.session.commit()
    except Exception as exc:  # noqa: BLE001 - health answers even when the database does not
        db.session.rollback()
        return {"ok": False, "error": type(exc).__name__}
    if data is None:
        return {"ok": True}
    return {
        "ok": False,
        "refusing_stale_batches": True,
        "refused_batches": data.get("refused_batches"),
        "since": data.get("since"),
        "last_at": data.get("last_at"),
        "clock_skew_seconds": data.get("clock_skew_seconds"),
        "note": stale_note(data),
    }
