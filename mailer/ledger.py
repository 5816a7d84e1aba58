"""The sending pause, shared by every process through the ledger's flags: after a 401/403, or when a setting every
email needs is missing, no worker sends until an operator fixes the cause and resumes. Nothing is marked failed
meanwhile: every delivery stays due.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import now
from core.db import db
from mailer.models import SystemFlag

log = logging.getLogger(__name__)

PAUSE_FLAG = "mail_provider_auth_error"


def read_flag(session: Session, key: str) -> dict[str, Any] | None:
    """A flag's JSON value as a dict ({} when unreadable), or None when the flag is not raised."""
    value = session.scalar(select(SystemFlag.value).where(SystemFlag.key == key))
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return {"reason": value}
    return data if isinstance(data, dict) else {"reason": str(data)}


def write_flag(session: Session, key: str, data: dict[str, Any]) -> bool:
    """Raise or update a flag (in the caller's transaction); True when it was not raised before."""
    flag = session.get(SystemFlag, key)
    if flag is None:
        session.add(SystemFlag(key=key, value=json.dumps(data), updated_at=now()))
        return True
    flag.value = json.dumps(data)
    flag.updated_at = now()
    return False


def lower_flag(session: Session, key: str) -> bool:
    """Remove a flag (in the caller's transaction); True when it was raised."""
    flag = session.get(SystemFlag, key)
    if flag is None:
        return False
    session.delete(flag)
    return True


def provider_pause(session: Session) -> dict[str, Any] | None:
    """The pause ({'reason', 'at'} and 'setting' when a setting caused it) while sending is stopped, else None."""
    return read_flag(session, PAUSE_FLAG)


def record_auth_failure(session: Session, reason: str, setting: str | None = None) -> None:
    """Pause sending (in the caller's transaction); every worker checks it before sending.

    `setting` names the variable to fix when a setting, not the provider, stopped sending.
    """
    data = {"reason": reason[:500], "at": now().isoformat()}
    if setting:
        data["setting"] = setting
    write_flag(session, PAUSE_FLAG, data)
    if setting:
        log.critical("ALERT: sending is paused until %s is fixed: %s", setting, reason[:200])
    else:
        log.critical("ALERT: the mail provider refused our credentials; sending is paused: %s", reason[:200])


def clear_auth_failure(session: Session) -> bool:
    """Lift the pause (in the caller's transaction) once the cause is fixed; True when there was one."""
    return lower_flag(session, PAUSE_FLAG)


def pause_provider(reason: str, setting: str | None = None) -> None:
    """Stop every worker's sending until resume_provider(), in a transaction of its own."""
    with db.write_transaction() as session:
        record_auth_failure(session, reason, setting)


def resume_provider() -> bool:
    """Lift the sending pause (after fixing the API key or the setting it names); True when there was one."""
    with db.write_transaction() as session:
        lifted = clear_auth_failure(session)
    if lifted:
        log.warning("provider pause lifted; sending resumes")
    return lifted
