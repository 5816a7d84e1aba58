"""/healthz entries: is a worker ticking, and may we send?"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import now
from core.db import db
from mailer.ledger import provider_pause
from nurture.models import WorkerHeartbeat

# A worker is stale after missing this many ticks (and at least STALE_MIN_SECONDS, for long batches).
STALE_TICKS = 3
STALE_MIN_SECONDS = 60.0


def stale_after(config: Mapping[str, Any]) -> timedelta:
    """How long after its last heartbeat a worker counts as stopped: 3 ticks, and at least 60 s."""
    tick = float(config.get("NURTURE_TICK_SECONDS", 5.0))
    return timedelta(seconds=max(STALE_TICKS * tick, STALE_MIN_SECONDS))


def last_heartbeat(session: Session) -> datetime | None:
    """When any worker last reported, or None when none ever has."""
    return session.scalar(select(func.max(WorkerHeartbeat.beat_at)))


def worker_stopped(last_beat: datetime, moment: datetime, config: Mapping[str, Any]) -> bool:
    """Whether a worker whose last heartbeat was `last_beat` counts as stopped at `moment` (/healthz, dashboard)."""
    return moment - last_beat > stale_after(config)


def worker_probe() -> dict[str, Any]:
    """The latest heartbeat's age; not ok once the worker counts as stopped; no worker yet is reported, not failed."""
    try:
        latest = last_heartbeat(db.session)
        db.session.commit()
    except Exception as exc:  # noqa: BLE001 - health answers even when the database does not
        db.session.rollback()
        return {"ok": False, "error": type(exc).__name__}
    if latest is None:
        return {"ok": True, "seen": False}
    moment = now()
    age = (moment - latest).total_seconds()
    stopped = worker_stopped(latest, moment, current_app.config)
    return {"ok": not stopped, "seen": True, "last_beat_seconds_ago": round(age, 1)}


def provider_probe() -> dict[str, Any]:
    """Not ok while sending is paused: the provider refused our credentials, or a setting (named) is wrong."""
    try:
        pause = provider_pause(db.session)
        db.session.commit()
    except Exception as exc:  # noqa: BLE001
        db.session.rollback()
        return {"ok": False, "error": type(exc).__name__}
    backend = current_app.config.get("MAIL_BACKEND", "outbox")
    if pause is None:
        return {"ok": True, "backend": backend, "paused": False}
    answer = {
        "ok": False,
        "backend": backend,
        "paused": True,
        "reason": str(pause.get("reason", ""))[:300],
        "since": pause.get("at"),
    }
    if pause.get("setting"):
        answer["setting"] = pause["setting"]  # the variable to fix before resuming
    return answer
