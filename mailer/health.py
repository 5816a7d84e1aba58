"""The sending pause: after a 401/403, or when a setting every email needs is missing, no process sends until an
operator fixes the cause and resumes. Also the check of those settings that `flask nurture run/tick` make at start.
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
