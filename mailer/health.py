"""The sending pause: after a 401/403, or when a setting every email needs is missing, no process sends until an
operator fixes the cause and resumes; the check of those settings that `flask nurture run/tick` make at start; and
signed webhook batches refused as stale (a server clock off by minutes would otherwise drop every event silently).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import now
from mailer.base import SettingError

log = logging.getLogger(__name__)

AUTH_FLAG = "mail_provider_auth_error"
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


def record_auth_failure(session: Session, reason: str, setting: str | None = None) -> None:
    """Raise the shared alert (in the caller's transaction); dispatch checks it before sending.

    `setting` names the variable to fix when a setting, not the provider, stopped sending.
    """
    from nurture.models import SystemFlag

    data = {"reason": reason[:500], "at": now().isoformat()}
    if setting:
        data["setting"] = setting
    value = json.dumps(data)
    flag = session.get(SystemFlag, AUTH_FLAG)
    if flag is None:
        session.add(SystemFlag(key=AUTH_FLAG, value=value, updated_at=now()))
    else:
        flag.value = value
        flag.updated_at = now()
    if setting:
        log.critical("ALERT: sending is paused until %s is fixed: %s", setting, reason[:200])
    else:
        log.critical("ALERT: the mail provider refused our credentials; sending is paused: %s", reason[:200])


def clear_auth_failure(session: Session) -> None:
    """Lift the alert once the key is fixed."""
    from nurture.models import SystemFlag

    flag = session.get(SystemFlag, AUTH_FLAG)
    if flag is not None:
        session.delete(flag)


def auth_failure(session: Session) -> dict[str, Any] | None:
    """The current alert ({'reason', 'at'} and 'setting' when a setting caused it) or None."""
    from nurture.models import SystemFlag

    value = session.scalar(select(SystemFlag.value).where(SystemFlag.key == AUTH_FLAG))
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return {"reason": value, "at": None}
    return data if isinstance(data, dict) else {"reason": str(data), "at": None}


def _flag_data(session: Session, key: str) -> dict[str, Any] | None:
    from nurture.models import SystemFlag

    value = session.scalar(select(SystemFlag.value).where(SystemFlag.key == key))
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def record_stale_batch(session: Session, age_seconds: float) -> None:
    """Note a signed batch refused as stale (in the caller's transaction); cleared by the next accepted batch."""
    from nurture.models import SystemFlag

    moment = now().isoformat()
    previous = _flag_data(session, STALE_FLAG)
    data = {
        "since": (previous or {}).get("since") or moment,
        "last_at": moment,
        "clock_skew_seconds": round(age_seconds),
        "refused_batches": int((previous or {}).get("refused_batches") or 0) + 1,
    }
    flag = session.get(SystemFlag, STALE_FLAG)
    if flag is None:
        session.add(SystemFlag(key=STALE_FLAG, value=json.dumps(data), updated_at=now()))
        log.error(
            "ALERT: SendGrid's signed event batches are %+d s from this server's clock (limit 600 s) and are "
            "refused; check the clock (NTP)",
            round(age_seconds),
        )
    else:
        flag.value = json.dumps(data)
        flag.updated_at = now()


def clear_stale_batches(session: Session) -> None:
    """A batch was accepted: events flow again (in the caller's transaction)."""
    from nurture.models import SystemFlag

    flag = session.get(SystemFlag, STALE_FLAG)
    if flag is not None:
        session.delete(flag)
        log.warning("SendGrid webhook batches are accepted again")


def stale_batches(session: Session) -> dict[str, Any] | None:
    """While the latest signed batches are being refused as stale: since, last_at, clock_skew_seconds, count."""
    return _flag_data(session, STALE_FLAG)


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
    from core.db import db

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
