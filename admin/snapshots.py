"""The dashboard's figures kept in the database (dashboard_snapshots), shared by every process.

Computing them reads every lead, submission and delivery of the period (1 to 2 s at a million leads), so a view
reads one row instead: its (days, campaign, time zone) snapshot, and says when it was computed. The nurture
worker recomputes, every CHECK_SECONDS, the snapshots viewed in the last REQUESTED_WITHIN that are older than
DASHBOARD_CACHE_SECONDS; a view never waits for that. A view computes the figures itself (and stores them for
everyone) only when there is no snapshot yet, or when it is older than INLINE_AFTER times DASHBOARD_CACHE_SECONDS
(no worker running, or nobody looked for an hour). DASHBOARD_CACHE_SECONDS=0 computes them on every view.
The alerts are never kept: each view reads them afresh.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from admin.models import DashboardSnapshot
from admin.queries import Dashboard, alerts, dashboard_figures
from core.clock import now
from core.db import db

PERIODS = (7, 30, 90)  # the periods the dashboard offers, in days
DEFAULT_PERIOD = 30  # what the dashboard opens on: the worker keeps it fresh even before anyone looks
CHECK_SECONDS = 10.0  # how often the worker looks for snapshots to refresh (one query on a tiny table)
REQUESTED_WITHIN = timedelta(hours=1)  # snapshots viewed this recently are kept fresh by the worker
NOTE_EVERY = timedelta(minutes=1)  # a view writes its time at most this often per snapshot
INLINE_AFTER = 10  # a snapshot older than this many refresh intervals is recomputed by the view itself
FORMAT = 1  # the layout of `figures`: a snapshot of another layout counts as missing

Key = tuple[int, str, str]  # (days, campaign or "", time zone)
TABLES = ("top_sources", "top_sources_booked", "top_campaigns", "top_campaigns_booked")
_requested = DashboardSnapshot.requested_at


def dashboard(days: int, campaign: str, moment: datetime, tz: str, refresh_seconds: float) -> Dashboard:
    """The figures a view shows: its snapshot (`as_of` says from when) with the alerts read afresh."""
    if refresh_seconds <= 0:
        figures = dashboard_figures(db.session, days, campaign, moment, tz)
    else:
        figures = _snapshot_for_view((days, campaign, tz), moment, timedelta(seconds=refresh_seconds))
    return replace(figures, alerts=alerts(db.session, figures.start, moment))


def _snapshot_for_view(key: Key, moment: datetime, interval: timedelta) -> Dashboard:
    row = db.session.get(DashboardSnapshot, key)
    figures = _decode(row) if row is not None else None
    if row is None or figures is None or moment - row.computed_at >= INLINE_AFTER * interval:
        return refresh(key, requested=moment)  # and the worker keeps it fresh from now on
    if row.requested_at is None or row.requested_at <= moment - NOTE_EVERY:
        # Once a minute at most, so a busy dashboard does not write on every view.
        with db.write_transaction() as s:
            s.execute(
                update(DashboardSnapshot)
                .where(*_is(key), or_(_requested.is_(None), _requested <= moment - NOTE_EVERY))
                .values(requested_at=moment)
            )
    return figures


def refresh(key: Key, requested: datetime | None = None) -> Dashboard:
    """Compute the figures of `key` now and store them for every process (`requested`: a view asked for them)."""
    days, campaign, tz = key
    moment = now()
    figures = replace(dashboard_figures(db.session, days, campaign, moment, tz), as_of=moment)
    with db.write_transaction() as s:
        _store(s, key, figures, requested)
    return figures


def refresh_due() -> int:
    """The worker's job: recompute the snapshots viewed in the last hour, and the one the dashboard opens on,
    when older than DASHBOARD_CACHE_SECONDS; returns how many."""
    seconds = float(current_app.config["DASHBOARD_CACHE_SECONDS"])
    if seconds <= 0:
        return 0
    moment = now()
    due = select(DashboardSnapshot.days, DashboardSnapshot.campaign, DashboardSnapshot.timezone).where(
        _requested >= moment - REQUESTED_WITHIN, DashboardSnapshot.computed_at <= moment - timedelta(seconds=seconds)
    )
    keys = [tuple(k) for k in db.session.execute(due.order_by(DashboardSnapshot.computed_at))]
    # The page a marketer opens first (all campaigns, the default period) is never computed while they wait.
    opening = (DEFAULT_PERIOD, "", current_app.config["CLINIC_TIMEZONE"])
    if opening not in keys:
        row = db.session.get(DashboardSnapshot, opening)
        if row is None or row.computed_at <= moment - timedelta(seconds=seconds):
            keys.append(opening)
    for key in keys:
        refresh(key)
    return len(keys)


def stored_keys() -> list[Key]:
    """Every snapshot's key."""
    columns = (DashboardSnapshot.days, DashboardSnapshot.campaign, DashboardSnapshot.timezone)
    return [tuple(k) for k in db.session.execute(select(*columns).order_by(*columns))]


def _is(key: Key) -> tuple[Any, ...]:
    days, campaign, tz = key
    return (DashboardSnapshot.days == days, DashboardSnapshot.campaign == campaign, DashboardSnapshot.timezone == tz)


def _store(session: Session, key: Key, figures: Dashboard, requested: datetime | None) -> None:
    """Insert or replace the snapshot (two processes computing the same key at once: the later one stays)."""
    table = DashboardSnapshot.__table__
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    values = {"figures": _encode(figures), "computed_at": figures.as_of}
    if requested is not None:
        values["requested_at"] = requested
    days, campaign, tz = key
    stmt = dialect.insert(table).values(days=days, campaign=campaign, timezone=tz, **values)
    session.execute(stmt.on_conflict_do_update(index_elements=["days", "campaign", "timezone"], set_=values))


def _encode(figures: Dashboard) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "start": figures.start.isoformat(),
        "end": figures.end.isoformat(),
        "funnel": figures.funnel,
        "per_day": [(day.isoformat(), n) for day, n in figures.per_day],
        **{name: getattr(figures, name) for name in TABLES},
    }


def _decode(row: DashboardSnapshot) -> Dashboard | None:
    stored = row.figures
    if not isinstance(stored, dict) or stored.get("format") != FORMAT:
        return None
    return Dashboard(
        days=row.days,
        campaign=row.campaign,
        start=datetime.fromisoformat(stored["start"]),
        end=datetime.fromisoformat(stored["end"]),
        funnel=[(label, int(n)) for label, n in stored["funnel"]],
        per_day=[(date.fromisoformat(day), int(n)) for day, n in stored["per_day"]],
        **{name: [(str(a), int(n), int(won)) for a, n, won in stored[name]] for name in TABLES},
        as_of=row.computed_at,
    )
