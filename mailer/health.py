"""The provider alert: after a 401/403 every process stops sending until an operator fixes the key."""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import now

log = logging.getLogger(__name__)

AUTH_FLAG = "mail_provider_auth_error"


def record_auth_failure(session: Session, reason: str) -> None:
    """Raise the shared alert (in the caller's transaction); dispatch checks it before sending."""
    from nurture.models import SystemFlag

    value = json.dumps({"reason": reason[:500], "at": now().isoformat()})
    flag = session.get(SystemFlag, AUTH_FLAG)
    if flag is None:
        session.add(SystemFlag(key=AUTH_FLAG, value=value, updated_at=now()))
    else:
        flag.value = value
        flag.updated_at = now()
    log.critical("ALERT: the mail provider refused our credentials; sending is paused: %s", reason[:200])


def clear_auth_failure(session: Session) -> None:
    """Lift the alert once the key is fixed."""
    from nurture.models import SystemFlag

    flag = session.get(SystemFlag, AUTH_FLAG)
    if flag is not None:
        session.delete(flag)


def auth_failure(session: Session) -> dict[str, Any] | None:
    """The current alert ({'reason', 'at'}) or None."""
    from nurture.models import SystemFlag

    value = session.scalar(select(SystemFlag.value).where(SystemFlag.key == AUTH_FLAG))
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return {"reason": value, "at": None}
    return data if isinstance(data, dict) else {"reason": str(data), "at": None}
