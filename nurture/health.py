"""/healthz entries: is a worker ticking, and may we send?"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import func, select

from core.clock import now
from core.db import db
from nurture.dispatch import provider_pause
from nurture.models import WorkerHeartbeat

# A worker is stale after missing this many ticks (and at least STALE_MIN_SECONDS, for long batches).
STALE_TICKS = 3
STALE_MIN_SECONDS = 60.0


def worker_probe() -> dict[str, Any]:
    """The latest heartbeat's age; not ok once older than 3 ticks (or 60 s); no worker yet is reported, not failed."""
    try:
        latest = db.session.scalar(select(func.max(WorkerHeartbeat.beat_at)))
        db.session.commit()
    except Exception as exc:  # noqa: BLE001 - health answers even when the database does not
        db.session.rollback()
        return {"ok": False, "error": type(exc).__name__}
    if latest is None:
        return {"ok": True, "seen": False}
    age = (now() - latest).total_seconds()
    limit = max(STALE_TICKS * float(current_app.config.get("NURTURE_TICK_SECONDS", 5.0)), STALE_MIN_SECONDS)
    return {"ok": age <= limit, "seen": True, "last_beat_seconds_ago": round(age, 1)}


def provider_probe() -> dict[str, Any]:
    """Not ok while sending is paused: the provider refused our credentials, or a setting (named) is wrong."""
    try:
        pause = provider_pause()
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
