"""The clock behind an interface, so tests and the benchmark can move time without patching."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app, has_app_context


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to; used by tests and simulations."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the frozen time."""
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move the clock forward and return the new time."""
        with self._lock:
            self._now += delta if delta is not None else timedelta(**kwargs)
            return self._now

    def set(self, moment: datetime) -> None:
        """Jump to a given aware moment."""
        with self._lock:
            self._now = moment.astimezone(UTC)


_system = SYSTEM = SystemClock()


def now() -> datetime:
    """The app's notion of now: the configured clock inside an app context, else the system clock."""
    if has_app_context():
        return app_now(current_app._get_current_object())  # type: ignore[attr-defined]
    return _system.now()


def app_now(app: Flask) -> datetime:
    """now() for a caller that already holds the app (the landing view: a proxy lookup per call otherwise)."""
    return app.extensions.get("clock", _system).now()


def init_app(app) -> None:  # noqa: ANN001
    """Install the clock given in config (CLOCK) or the system clock."""
    app.extensions["clock"] = app.config.get("CLOCK") or _system
